"""Fashion-MNIST: backprop vs DGL vs PredSim on the same network and budget.

Run one variant (`backprop`, `dgl` or `predsim`; default `dgl`):

    localgrad-train --config=fashion_mnist:backprop \
        --workdir=/tmp/fmnist/backprop
    localgrad-train --config=fashion_mnist:dgl \
        --workdir=/tmp/fmnist/dgl
    localgrad-train --config=fashion_mnist:predsim \
        --workdir=/tmp/fmnist/predsim

Every variant trains the same VGG-11 at a quarter of its width (8 units)
for the same 10 epochs, batch 128, SGD (momentum 0.9, lr 0.05 cosine to 0,
weight decay 5e-4), seed 0 (`--config.seed=1` for another); only the
method differs: end-to-end backprop (K = 1), DGL (K = 4, `mlp_sr` heads,
parallel schedule) or PredSim (K = 4, `predsim` heads). About 45 s per
epoch on 2 CPU cores. bench/accuracy.py compares them over seeds.
"""

from localgrad.errors import UserError
from localgrad.train_config import apply_variant, default_config

VARIANTS = ("backprop", "dgl", "predsim")


def get_config(variant="dgl"):
    if variant not in VARIANTS:
        raise UserError(
            f"Unknown variant {variant!r}; use one of {', '.join(VARIANTS)}."
        )
    config = default_config()
    config.dataset = "fashion_mnist"
    config.model = "vgg11"
    config.width = 0.25
    config.batch_size = 128
    config.optimizer = "sgd"
    config.learning_rate = 0.05
    config.momentum = 0.9
    config.weight_decay = 5e-4
    config.lr_schedule = "cosine"
    config.epochs = 10
    apply_variant(
        config, "backprop" if variant == "backprop" else variant + "_k4"
    )
    return config
