"""The training configuration: every field, its default, and its checks.

`default_config()` is the one place that lists what `bin/train.py` reads;
the modules in `configs/` start from it and override what they change.
`check_config` turns a bad value into a `ValueError` that names the field
and the fix, before any data or model is touched.
"""

from ml_collections import config_dict

METHODS = ("backprop", "dgl", "predsim", "associated")
SCHEDULES = ("parallel", "sequential", "multilap", "pipelined")
OPTIMIZERS = ("sgd", "adam")
LR_SCHEDULES = ("constant", "cosine", "step")
BALANCES = ("memory", "compute")
PRECISION_POLICIES = ("float32", "mixed_float16", "mixed_bfloat16")
# The heads a method uses when `heads` is not set.
METHOD_HEADS = {"dgl": "mlp_sr", "predsim": "predsim"}


def default_config() -> config_dict.ConfigDict:
    """Every training field with its default (DGL on Fashion-MNIST).

    Example:

    ```python
    config = localgrad.train_config.default_config()
    config.method = "predsim"
    localgrad.train_lib.train_and_evaluate(config, "/tmp/run")
    ```

    Returns:
        A `ml_collections.ConfigDict`. Optional fields are typed
        placeholders (`None` until set), so that they can still be set on
        the command line (`--config.data_dir=/data`).
    """
    config = config_dict.ConfigDict()
    # The network: a name of `localgrad.models.MODEL_NAMES` and its width.
    config.model = "vgg11"
    config.width = 0.25
    # The data: a name of `localgrad.data.DATASET_NAMES`.
    config.dataset = "fashion_mnist"
    config.data_dir = config_dict.placeholder(str)
    config.batch_size = 128
    config.eval_batch_size = 500
    config.augment = True  # The data set's standard augmentation, if any.
    config.validation_fraction = 0.0  # Held out of train, evaluated per epoch.
    # The method: "backprop" (one block, end to end), "dgl" or "predsim".
    config.method = "dgl"
    config.num_blocks = 4  # K; 1 for backprop.
    config.boundaries = ()  # Explicit: units after which a block ends.
    config.heads = config_dict.placeholder(str)  # None: the method's heads.
    config.head_width = 1.0
    config.balance = config_dict.placeholder(str)  # None, memory, compute.
    config.decoupling = config_dict.placeholder(str)  # A decoupling.json.
    # Associated Learning (method "associated"): the width n of the label
    # codes, and the label side's (g_i, h_i) learning rate over the rest's.
    config.label_width = config_dict.placeholder(int)
    config.decoder_learning_rate_factor = 2.0
    # Which blocks train when: parallel, sequential or multilap, with
    # `laps` and block k's share e1 + k * e2 of the run; or pipelined (every
    # block at every step, all at once, each on its device).
    config.schedule = "parallel"
    config.laps = 1
    config.e1 = 1.0
    config.e2 = 0.0
    # Where the blocks live: device names (block k on devices[k]; fewer
    # devices than blocks: consecutive blocks share one). Empty: default.
    # On the command line: "--config.devices=('/gpu:0','/gpu:1')".
    config.devices = ()
    # Optimization; each block gets its own copy of the optimizer.
    config.optimizer = "sgd"
    config.learning_rate = 0.1
    config.momentum = 0.9
    config.nesterov = False
    config.weight_decay = 5e-4  # The optimizer's (decoupled) weight decay.
    config.lr_schedule = "cosine"  # constant, cosine or step.
    config.warmup_epochs = 0.0  # Linear warm-up (cosine only).
    config.lr_decay_epochs = ()  # step: epochs at which lr is multiplied
    config.lr_decay_factor = 0.1  # by this factor.
    config.label_smoothing = 0.0
    # The run.
    config.epochs = 10
    config.steps_per_epoch = config_dict.placeholder(int)  # None: one pass.
    config.seed = 0
    config.jit = False
    config.mixed_precision = "float32"
    config.steps_per_execution = 1
    # On resume, read (and drop) the batches of the finished epochs, so
    # that the resumed run sees exactly the data of an uninterrupted one.
    # Cheap for in-memory data; turn off for ImageNet-sized data (the
    # resumed run then starts the data order over).
    config.replay_data_on_resume = True
    config.keep_checkpoints = 2
    return config


def apply_variant(config: config_dict.ConfigDict, variant: str) -> None:
    """Sets the method and K from a variant name such as `"dgl_k4"`.

    Variants: `"backprop"`, and `"<dgl|predsim|associated>_k<K>"`.

    Example:

    ```python
    config = default_config()
    apply_variant(config, "predsim_k2")  # method predsim, num_blocks 2
    ```

    Args:
        config: The config to change in place.
        variant: The variant name.

    Raises:
        ValueError: for a name not of that form.
    """
    if variant == "backprop":
        config.method = "backprop"
        config.num_blocks = 1
        return
    method, _, blocks = variant.partition("_k")
    if method not in ("dgl", "predsim", "associated") or not blocks.isdigit():
        raise ValueError(
            f"Unknown variant {variant!r}: use 'backprop', 'dgl_k<K>', "
            "'predsim_k<K>' or 'associated_k<K>' (e.g. 'dgl_k4')."
        )
    config.method = method
    config.num_blocks = int(blocks)


# The published training set-ups (DGL, ICML 2020; SEDONA, ICLR 2021):
# what configs/paper/ runs for each data set.
PAPER_RECIPES = {
    "cifar10": dict(
        batch_size=128,
        eval_batch_size=500,
        learning_rate=0.1,
        weight_decay=5e-4,
        lr_schedule="cosine",
        epochs=200,
    ),
    "tiny_imagenet": dict(
        batch_size=128,
        eval_batch_size=500,
        learning_rate=0.1,
        weight_decay=5e-4,
        lr_schedule="cosine",
        epochs=100,
        replay_data_on_resume=False,
    ),
    "imagenet2012": dict(
        batch_size=256,
        eval_batch_size=250,
        learning_rate=0.1,
        weight_decay=1e-4,
        lr_schedule="step",
        lr_decay_epochs=(30, 60),
        lr_decay_factor=0.1,
        epochs=90,
        replay_data_on_resume=False,
    ),
}


def paper_recipe(
    dataset: str, model: str, variant: str
) -> config_dict.ConfigDict:
    """The published recipe for a full-width `model` on `dataset`.

    SGD with momentum 0.9 and the data set's standard augmentation, with
    the batch size, learning-rate schedule, weight decay and epochs of
    `PAPER_RECIPES`; `variant` as in `apply_variant`.

    Example:

    ```python
    config = paper_recipe("cifar10", "vgg19", "dgl_k4")
    ```

    Raises:
        ValueError: for a data set without a recipe, or a bad variant.
    """
    if dataset not in PAPER_RECIPES:
        raise ValueError(
            f"No paper recipe for {dataset!r}; recipes exist for "
            f"{', '.join(PAPER_RECIPES)}."
        )
    config = default_config()
    config.dataset = dataset
    config.model = model
    config.width = 1.0
    config.augment = True
    config.optimizer = "sgd"
    config.momentum = 0.9
    config.update(PAPER_RECIPES[dataset])
    apply_variant(config, variant)
    return config


def check_config(config: config_dict.ConfigDict) -> None:
    """Raises a `ValueError` naming the first bad field of `config`.

    Checks names against the known choices and numbers against their
    ranges; model and data set names are checked by their own modules.

    Example:

    ```python
    config = default_config()
    config.method = "dni"
    check_config(config)  # ValueError: Unknown method 'dni' ...
    ```

    Args:
        config: A config built from `default_config()`.

    Raises:
        ValueError: for an unknown field, or a field with a bad value.
    """
    unknown = sorted(set(config.keys()) - set(default_config().keys()))
    if unknown:
        raise ValueError(
            f"Unknown config field(s) {unknown}; the fields are those of "
            "localgrad.train_config.default_config()."
        )
    _check_choice("method", config.method, METHODS)
    _check_choice("schedule", config.schedule, SCHEDULES)
    _check_choice("optimizer", config.optimizer, OPTIMIZERS)
    _check_choice("lr_schedule", config.lr_schedule, LR_SCHEDULES)
    _check_choice("mixed_precision", config.mixed_precision, PRECISION_POLICIES)
    if config.balance is not None:
        _check_choice("balance", config.balance, BALANCES)
    for name in ("batch_size", "eval_batch_size", "epochs"):
        _check_positive_int(name, config[name])
    _check_positive_int("steps_per_execution", config.steps_per_execution)
    _check_positive_int("keep_checkpoints", config.keep_checkpoints)
    if config.steps_per_epoch is not None:
        _check_positive_int("steps_per_epoch", config.steps_per_epoch)
        if config.steps_per_epoch % config.steps_per_execution:
            raise ValueError(
                f"steps_per_epoch={config.steps_per_epoch} must be a "
                "multiple of steps_per_execution="
                f"{config.steps_per_execution}."
            )
    if not config.learning_rate > 0:
        raise ValueError(
            f"learning_rate must be > 0; got {config.learning_rate}."
        )
    if not 0.0 <= config.label_smoothing < 1.0:
        raise ValueError(
            f"label_smoothing must be in [0, 1); got {config.label_smoothing}."
        )
    if config.weight_decay < 0 or config.momentum < 0:
        raise ValueError(
            "weight_decay and momentum must be >= 0; got "
            f"{config.weight_decay} and {config.momentum}."
        )
    if config.warmup_epochs < 0 or (
        config.warmup_epochs > 0 and config.lr_schedule != "cosine"
    ):
        raise ValueError(
            f"warmup_epochs={config.warmup_epochs} needs lr_schedule="
            "'cosine' and a value >= 0."
        )
    if config.lr_decay_epochs and config.lr_schedule != "step":
        raise ValueError(
            "lr_decay_epochs is for lr_schedule='step'; got "
            f"lr_schedule={config.lr_schedule!r}."
        )
    _check_devices(config.devices)
    _check_method(config)


def _check_devices(devices):
    if isinstance(devices, str) or not all(
        isinstance(name, str) and name.startswith("/") for name in devices
    ):
        raise ValueError(
            f"devices={devices!r} must be a list of device names such as "
            "('/gpu:0', '/gpu:1') or ('/job:worker/replica:0/task:1/device:"
            "CPU:0',); on the command line: "
            "\"--config.devices=('/cpu:0','/cpu:1')\"."
        )


def _check_method(config):
    num_blocks, boundaries = config.num_blocks, tuple(config.boundaries)
    _check_positive_int("num_blocks", num_blocks)
    _check_associated(config)
    if config.method == "backprop":
        extras = {
            "boundaries": boundaries,
            "heads": config.heads,
            "balance": config.balance,
            "decoupling": config.decoupling,
        }
        given = [name for name, value in extras.items() if value]
        if num_blocks != 1 or given:
            raise ValueError(
                "method='backprop' trains the network end to end as one "
                f"block: set num_blocks=1 (got {num_blocks}) and leave "
                f"boundaries, heads, balance and decoupling unset (got "
                f"{given or 'none'}); or choose method='dgl'/'predsim'."
            )
        return
    if config.method == "predsim" and config.heads not in (None, "predsim"):
        raise ValueError(
            f"method='predsim' uses the 'predsim' heads; got heads="
            f"{config.heads!r}. Leave heads unset, or use method='dgl' for "
            "other heads."
        )
    if boundaries and len(boundaries) + 1 != num_blocks:
        raise ValueError(
            f"boundaries={boundaries} make {len(boundaries) + 1} blocks but "
            f"num_blocks={num_blocks}; set num_blocks={len(boundaries) + 1}."
        )
    if boundaries and config.balance is not None:
        raise ValueError(
            "balance chooses the boundaries; it cannot be combined with "
            "explicit boundaries."
        )
    if config.decoupling is not None:
        if config.method != "dgl" or boundaries or config.heads is not None:
            raise ValueError(
                "decoupling= sets the boundaries and heads from a SEDONA "
                "search: use it with method='dgl' and leave boundaries and "
                "heads unset."
            )
        if config.balance is not None:
            raise ValueError("decoupling= cannot be combined with balance=.")


def _check_associated(config):
    if config.method != "associated":
        if config.label_width is not None:
            raise ValueError(
                "label_width is for method='associated'; unset it, or set "
                "--config.method=associated."
            )
        return
    if config.label_width is None:
        raise ValueError(
            "method='associated' needs label_width, the width n of the "
            "label codes (e.g. --config.label_width=300)."
        )
    _check_positive_int("label_width", config.label_width)
    if not config.decoder_learning_rate_factor > 0:
        raise ValueError(
            "decoder_learning_rate_factor must be > 0; got "
            f"{config.decoder_learning_rate_factor}."
        )
    if config.heads is not None or config.decoupling is not None:
        raise ValueError(
            "method='associated' ends every block in a bridge: leave heads "
            "and decoupling unset."
        )
    if config.schedule not in ("parallel", "pipelined"):
        raise ValueError(
            "method='associated' trains every component on every batch: "
            f"use schedule='parallel' or 'pipelined' (got "
            f"{config.schedule!r})."
        )


def _check_choice(name, value, choices):
    if value not in choices:
        raise ValueError(
            f"Unknown {name} {value!r}; use one of {', '.join(choices)}."
        )


def _check_positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer; got {value!r}.")
