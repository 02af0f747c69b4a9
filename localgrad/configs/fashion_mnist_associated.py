"""Fashion-MNIST with Associated Learning, K = 4 components.

Run one variant (`vgg11`, the default, or `mlp`):

    localgrad-train --config=fashion_mnist_associated \
        --workdir=/tmp/fmnist/associated_vgg11
    localgrad-train --config=fashion_mnist_associated:mlp \
        --workdir=/tmp/fmnist/associated_mlp

Every component ends in a bridge (flatten, Dense(5n), Dense(n)) and learns
from its associated and autoencoder losses (`localgrad.AssociatedModel`);
the label codes are n = 300 wide. VGG-11 at half width (8 units) or the
MLP at a quarter width (4 hidden layers of 256), 10 epochs, batch 128,
Adam (lr 1e-3, cosine to 0; the label side at 2e-3), seed 0. The paper's
recipe (Adam 1e-4, batch 32, 200 epochs) is in paper/. The
per-block losses (`block_k_associated_loss`, `block_k_autoencoder_loss`)
go to TensorBoard; `accuracy_by_block.png` plots the shortcut accuracy at
every depth.

Learning rate, measured (MLP variant, constant lr, seed 0, nice'd 2-core
CPU; test accuracy at the 4 shortcut depths). After 150 steps (a third
of an epoch) with Keras' Glorot-uniform initialization of g_i, b_i, h_i:
3e-4 56/10/10/10 %, 1e-3 80/10/10/10 %, 3e-3 68/18/10/10 %, 1e-2 10 % at
every depth; with the official code's He-normal one (now the default):
1e-3 82/82/13/10 %, 3e-3 47/48/46/10 %. After one full epoch, He-normal:
1e-3 84.3/84.8/84.8/84.9 %, 3e-3 85.5/85.5/85.4/85.2 %; Glorot-uniform,
1e-3: 83.5/84.5/84.5/84.6 %. The deep components learn last (their label
codes and decoders must settle first); 1e-2 had learned nothing after
150 steps and 3e-4 is slow, so the default stays 1e-3, cosine over the
10 epochs. VGG-11 was not swept (the same rate is used).

The same network, optimizer and budget trained by the other methods, for
bench/associated.py: `<network>_backprop` (end to end, K = 1) and
`<network>_dgl` (DGL, K = 4, `mlp_sr` heads on VGG-11, `mlp` heads on the
MLP), e.g.
`--config=fashion_mnist_associated:vgg11_backprop`.
"""

from localgrad.errors import UserError
from localgrad.train_config import default_config

NETWORKS = {"vgg11": 0.5, "mlp": 0.25}
METHODS = {
    "": ("associated", 4),
    "_backprop": ("backprop", 1),
    "_dgl": ("dgl", 4),
}
VARIANTS = tuple(net + suffix for net in NETWORKS for suffix in METHODS)


def get_config(variant="vgg11"):
    if variant not in VARIANTS:
        raise UserError(
            f"Unknown variant {variant!r}; use one of {', '.join(VARIANTS)}."
        )
    network = next(net for net in NETWORKS if variant.startswith(net))
    method, num_blocks = METHODS[variant[len(network) :]]
    config = default_config()
    config.dataset = "fashion_mnist"
    config.model = network
    config.width = NETWORKS[network]
    config.method = method
    config.num_blocks = num_blocks
    if method == "associated":
        config.label_width = 300
    if method == "dgl" and network == "mlp":
        config.heads = "mlp"  # mlp_sr needs a feature map.
    config.batch_size = 128
    config.optimizer = "adam"
    config.learning_rate = 1e-3
    config.weight_decay = 0.0
    config.lr_schedule = "cosine"
    config.epochs = 10
    return config
