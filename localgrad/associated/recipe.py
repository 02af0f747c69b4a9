"""The training set-up of the Associated Learning paper's experiments.

Kao & Chen (Neural Computation 2021) trained every network with Adam,
batch 32, for 200 epochs, the learning rate × 0.1 at 40, 60 and 80 % of
the steps and × 0.5 at 90 %, the label side (g_i, h_i) at twice the rate
(methods.md §7, from the official TensorFlow code). `paper_recipe` returns
that set-up as a `localgrad-train` config; the modules
`localgrad/configs/paper/*_associated.py` call it.
"""

from ml_collections import config_dict

from localgrad.errors import UserError
from localgrad.models import stage_boundaries
from localgrad.models.cifar_resnet import CIFAR_RESNET_DEPTHS
from localgrad.train_config import default_config

EPOCHS = 200
# The learning rate's decays: (share of the run, factor).
DECAYS = ((0.4, 0.1), (0.6, 0.1), (0.8, 0.1), (0.9, 0.5))
# The label-code width n of each (data set, network), and the learning
# rate: the official main.py starts the ResNets at 1e-3, the rest at 1e-4.
LABEL_WIDTHS = {
    ("mnist", "mlp"): 1024,
    ("cifar10", "cnn_al"): 256,
    ("cifar10", "vgg_al"): 300,
    ("cifar10", "resnet20"): 300,
    ("cifar10", "resnet32"): 300,
    ("cifar100", "cnn_al"): 500,
    ("cifar100", "vgg_al"): 500,
    ("cifar100", "resnet20"): 500,
    ("cifar100", "resnet32"): 500,
}
LEARNING_RATE = 1e-4
RESNET_LEARNING_RATE = 1e-3
VARIANTS = ("associated", "backprop")


def paper_recipe(
    dataset: str, model: str, variant: str = "associated"
) -> config_dict.ConfigDict:
    """The AL paper's set-up for `model` on `dataset`, AL or backprop.

    `"associated"`: an `AssociatedModel` with the published components
    (one per unit of `cnn_al`, `vgg_al` and `mlp`; the stem and one stage
    each for `resnet20`/`resnet32`) and label width. `"backprop"`: the
    same network end to end through its own classifier, with the same
    optimizer and budget. The official code adds an L2 penalty to some
    networks (VGG_AL 1e-5, ResNets 1e-4); localgrad's weight decay is
    decoupled, a different thing, so it is left at 0.

    Example:

    ```python
    config = paper_recipe("cifar10", "resnet20")
    config.boundaries                    # (1, 4, 7)
    config.lr_decay_epochs               # (80, 120, 160, 180)
    localgrad.train_lib.train_and_evaluate(config, "/tmp/run")
    ```

    Args:
        dataset: `"mnist"`, `"cifar10"` or `"cifar100"`.
        model: A network of the paper: `"mlp"` (MNIST), `"cnn_al"`,
            `"vgg_al"`, `"resnet20"`, `"resnet32"` (CIFAR).
        variant: `"associated"` or `"backprop"`.

    Returns:
        A config for `localgrad-train`.

    Raises:
        ValueError: for a pair the paper did not run, or another variant.
    """
    if (dataset, model) not in LABEL_WIDTHS:
        pairs = ", ".join(f"{d}/{m}" for d, m in LABEL_WIDTHS)
        raise UserError(
            f"The AL paper has no {model} on {dataset}; its experiments "
            f"are {pairs}."
        )
    if variant not in VARIANTS:
        raise UserError(
            f"Unknown variant {variant!r}; use one of {', '.join(VARIANTS)}."
        )
    config = default_config()
    config.dataset = dataset
    config.model = model
    config.width = 1.0
    config.augment = dataset != "mnist"
    config.optimizer = "adam"
    config.learning_rate = (
        RESNET_LEARNING_RATE if model in CIFAR_RESNET_DEPTHS else LEARNING_RATE
    )
    config.weight_decay = 0.0
    config.batch_size = 32
    config.epochs = EPOCHS
    config.lr_schedule = "step"
    config.lr_decay_epochs = tuple(round(share * EPOCHS) for share, _ in DECAYS)
    config.lr_decay_factors = tuple(factor for _, factor in DECAYS)
    if variant == "backprop":
        config.method = "backprop"
        config.num_blocks = 1
        return config
    config.method = "associated"
    config.num_blocks = 4
    config.label_width = LABEL_WIDTHS[(dataset, model)]
    config.decoder_learning_rate_factor = 2.0
    if model in CIFAR_RESNET_DEPTHS:
        config.boundaries = tuple(stage_boundaries(model))
    return config
