"""The training configuration: every field, its default, and its checks.

`default_config()` holds every field `localgrad-train` reads, at the defaults
declared, each with its one-line doc, in `localgrad.train_fields.FIELDS`;
the modules in `localgrad/configs/` start from it and override what they
change.
`check_config` turns a bad value into a `ValueError` that names the field
and the fix, before any data or model is touched.
"""

import math

from ml_collections import config_dict

from localgrad.asynchrony.sampling import SAMPLINGS, check_sampling
from localgrad.asynchrony.slowdown import parse_slowdown, validate_slowdown
from localgrad.config_fields import config_from
from localgrad.distribute.addresses import parse_cluster
from localgrad.errors import UserError
from localgrad.search.published import (
    PUBLISHED,
    PUBLISHED_HEAD_WIDTH,
    published_decoupling_path,
)
from localgrad.train_fields import FIELDS

METHODS = ("backprop", "dgl", "predsim", "associated")
SCHEDULES = ("parallel", "sequential", "multilap", "pipelined", "async")
# The asynchronous fields and their defaults (schedule="async" only).
ASYNC_DEFAULTS = {
    field.name: field.default
    for field in FIELDS
    if field.name in ("buffer_size", "sampling", "max_reuse", "slowdown")
}
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
    return config_from(FIELDS)


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
        raise UserError(
            f"Unknown variant {variant!r}: use 'backprop', 'dgl_k<K>', "
            "'predsim_k<K>' or 'associated_k<K>' (e.g. 'dgl_k4')."
        )
    config.method = method
    config.num_blocks = int(blocks)


# The published training set-ups (DGL, ICML 2020; SEDONA, ICLR 2021):
# what localgrad/configs/paper/ runs for each data set.
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
    `PAPER_RECIPES`; `variant` as in `apply_variant`, or `"sedona"`: the
    decoupling the SEDONA authors searched and published (for the pairs of
    `localgrad.search.published.PUBLISHED`), K = 4 unless `num_blocks` is
    set, heads at the published width.

    Example:

    ```python
    config = paper_recipe("cifar10", "vgg19", "dgl_k4")
    config = paper_recipe("cifar10", "vgg19", "sedona")
    config.decoupling  # .../published_decouplings/cifar10_vgg19.json
    ```

    Raises:
        ValueError: for a data set without a recipe, a bad variant, or
            `"sedona"` for a pair without a published decoupling.
    """
    if dataset not in PAPER_RECIPES:
        raise UserError(
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
    if variant == "sedona":
        if (dataset, model) not in PUBLISHED:
            listed = ", ".join(f"{d}/{m}" for d, m in PUBLISHED)
            raise UserError(
                f"No published SEDONA decoupling for {model} on {dataset} "
                f"(published: {listed}); search one with localgrad-search and "
                "pass --config.decoupling=<decoupling.json>."
            )
        apply_variant(config, "dgl_k4")
        config.decoupling = published_decoupling_path(model, dataset)
        config.head_width = PUBLISHED_HEAD_WIDTH
        return config
    apply_variant(config, variant)
    return config


def check_config(config: config_dict.ConfigDict) -> None:
    """Raises a `UserError` naming the first bad field of `config`.

    Checks names against the known choices and numbers against their
    ranges; model and data set names are checked by their own modules.

    Example:

    ```python
    config = default_config()
    config.method = "dni"
    check_config(config)  # UserError: Unknown method 'dni' ...
    ```

    Args:
        config: A config built from `default_config()`.

    Raises:
        UserError: for an unknown field, or a field with a bad value.
    """
    unknown = sorted(set(config.keys()) - set(default_config().keys()))
    if unknown:
        raise UserError(
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
    if not 0 <= config.seed < 2**32:
        # numpy's and TensorFlow's seeds are unsigned 32-bit integers.
        raise UserError(f"seed must be in 0..{2**32 - 1}; got {config.seed}.")
    if config.precise_bn_batches != 0:
        _check_positive_int("precise_bn_batches", config.precise_bn_batches)
    if config.steps_per_epoch is not None:
        _check_positive_int("steps_per_epoch", config.steps_per_epoch)
        if config.steps_per_epoch % config.steps_per_execution:
            raise UserError(
                f"steps_per_epoch={config.steps_per_epoch} must be a "
                "multiple of steps_per_execution="
                f"{config.steps_per_execution}."
            )
    if config.head_width is not None and not config.head_width > 0:
        raise UserError(
            f"head_width must be > 0 (or unset); got {config.head_width}."
        )
    if not config.learning_rate > 0:
        raise UserError(
            f"learning_rate must be > 0; got {config.learning_rate}."
        )
    if not 0.0 <= config.label_smoothing < 1.0:
        raise UserError(
            f"label_smoothing must be in [0, 1); got {config.label_smoothing}."
        )
    if config.weight_decay < 0 or config.momentum < 0:
        raise UserError(
            "weight_decay and momentum must be >= 0; got "
            f"{config.weight_decay} and {config.momentum}."
        )
    if config.warmup_epochs < 0 or (
        config.warmup_epochs > 0 and config.lr_schedule != "cosine"
    ):
        raise UserError(
            f"warmup_epochs={config.warmup_epochs} needs lr_schedule="
            "'cosine' and a value >= 0."
        )
    if (
        config.lr_decay_epochs or config.lr_decay_factors
    ) and config.lr_schedule != "step":
        raise UserError(
            "lr_decay_epochs and lr_decay_factors are for lr_schedule="
            f"'step'; got lr_schedule={config.lr_schedule!r}."
        )
    factors = tuple(config.lr_decay_factors)
    if factors and len(factors) != len(config.lr_decay_epochs):
        raise UserError(
            f"lr_decay_factors={factors} needs one factor per entry of "
            f"lr_decay_epochs={tuple(config.lr_decay_epochs)}; or leave it "
            "empty to multiply by lr_decay_factor at each."
        )
    if not all(
        isinstance(factor, (int, float)) and factor > 0 for factor in factors
    ):
        raise UserError(f"lr_decay_factors must be numbers > 0; got {factors}.")
    _check_devices(config.devices)
    _check_cluster(config.cluster, config.cluster_timeout)
    _check_method(config)
    _check_schedule(config)
    _check_transport(config)
    _check_async(config)


def schedule_epochs(num_blocks: int, e1: float, e2: float) -> float:
    """The epochs of a sequential or multi-lap run: Σ_k (e1 + k·e2).

    Example:

    ```python
    schedule_epochs(4, e1=50, e2=10)  # 260.0
    ```
    """
    return num_blocks * e1 + e2 * num_blocks * (num_blocks - 1) / 2


def _check_schedule(config):
    _check_positive_int("laps", config.laps)
    if config.laps != 1 and config.schedule != "multilap":
        raise UserError(
            f"laps={config.laps} is for schedule='multilap'; got schedule="
            f"{config.schedule!r}."
        )
    if not (config.e1 > 0 and config.e2 >= 0):
        raise UserError(
            "e1 (epochs of block 0) must be > 0 and e2 (epochs each deeper "
            f"block adds) >= 0; got e1={config.e1}, e2={config.e2}."
        )
    if config.schedule in ("parallel", "pipelined", "async"):
        return
    epochs = schedule_epochs(config.num_blocks, config.e1, config.e2)
    if abs(epochs - round(epochs)) > 1e-9:
        raise UserError(
            f"schedule={config.schedule!r} with e1={config.e1}, e2="
            f"{config.e2} trains num_blocks={config.num_blocks} blocks for "
            f"{epochs:g} epochs, not a whole number: choose e1 and e2 whose "
            "sum over the blocks is whole."
        )
    if abs(epochs - config.epochs) > 1e-9:
        raise UserError(
            f"schedule={config.schedule!r} trains block k for e1 + k*e2 "
            f"epochs (e1={config.e1}, e2={config.e2}), {epochs:g} epochs "
            f"for num_blocks={config.num_blocks}, but epochs="
            f"{config.epochs}. Set --config.epochs={epochs:g}, or change "
            "e1 and e2 so that their sum over the blocks is the epochs."
        )


def _check_transport(config):
    tau, step = config.transport_tau, config.uzawa_step
    if tau is not None and step is not None:
        raise UserError(
            f"transport_tau={tau} (a fixed step) and uzawa_step={step} (the "
            "adaptive multiplier) are two kinds of transport "
            "regularization: set one of them."
        )
    if config.transport_varying and tau is None:
        raise UserError(
            "transport_varying=True halves transport_tau for the first half "
            "of the blocks: set transport_tau too (e.g. "
            "--config.transport_tau=1)."
        )
    if config.uzawa_every is not None and step is None:
        raise UserError(
            f"uzawa_every={config.uzawa_every} is the period of the Uzawa "
            "update: set uzawa_step too (e.g. --config.uzawa_step=1)."
        )
    if tau is not None and not tau > 0:
        raise UserError(
            f"transport_tau must be > 0 (inf for no term); got {tau}. A "
            "smaller tau weighs the term more: term / (2 tau)."
        )
    if step is not None and not (step > 0 and math.isfinite(step)):
        raise UserError(f"uzawa_step must be a number > 0; got {step}.")
    if config.uzawa_every is not None:
        _check_positive_int("uzawa_every", config.uzawa_every)


def _check_async(config):
    given = {name: config[name] for name in ASYNC_DEFAULTS}
    if config.schedule != "async":
        changed = sorted(
            name
            for name, value in given.items()
            if value != ASYNC_DEFAULTS[name]
        )
        if changed:
            raise UserError(
                f"{changed} are for schedule='async' (got schedule="
                f"{config.schedule!r}); set --config.schedule=async or drop "
                "them."
            )
        return
    _check_positive_int("buffer_size", config.buffer_size)
    if config.sampling not in SAMPLINGS:
        _check_choice("sampling", config.sampling, SAMPLINGS)
    check_sampling(config.sampling, config.max_reuse)
    if config.method == "backprop":
        raise UserError(
            "schedule='async' needs several blocks; method='backprop' has "
            "one. Use method='dgl' or 'predsim'."
        )
    validate_slowdown(parse_slowdown(config.slowdown), config.num_blocks)


def _check_devices(devices):
    if isinstance(devices, str) or not all(
        isinstance(name, str) and name.startswith("/") for name in devices
    ):
        raise UserError(
            f"devices={devices!r} must be a list of device names such as "
            "('/gpu:0', '/gpu:1') or ('/job:worker/replica:0/task:1/device:"
            "CPU:0',); on the command line: "
            "\"--config.devices=('/cpu:0','/cpu:1')\"."
        )


def _check_cluster(cluster, timeout):
    if cluster is None:
        return
    parse_cluster(cluster)  # A ValueError naming the bad address.
    if isinstance(timeout, bool) or not (
        isinstance(timeout, (int, float)) and timeout > 0
    ):
        raise UserError(
            f"cluster_timeout must be a positive number of seconds; got "
            f"{timeout!r}."
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
            raise UserError(
                "method='backprop' trains the network end to end as one "
                f"block: set num_blocks=1 (got {num_blocks}) and leave "
                f"boundaries, heads, balance and decoupling unset (got "
                f"{given or 'none'}); or choose method='dgl'/'predsim'."
            )
        return
    if config.method == "predsim" and config.heads not in (None, "predsim"):
        raise UserError(
            f"method='predsim' uses the 'predsim' heads; got heads="
            f"{config.heads!r}. Leave heads unset, or use method='dgl' for "
            "other heads."
        )
    if boundaries and len(boundaries) + 1 != num_blocks:
        raise UserError(
            f"boundaries={boundaries} make {len(boundaries) + 1} blocks but "
            f"num_blocks={num_blocks}; set num_blocks={len(boundaries) + 1}."
        )
    if boundaries and config.balance is not None:
        raise UserError(
            "balance chooses the boundaries; it cannot be combined with "
            "explicit boundaries."
        )
    if config.decoupling is not None:
        if (
            config.method not in ("dgl", "associated")
            or boundaries
            or config.heads is not None
        ):
            raise UserError(
                "decoupling= sets the boundaries and heads from a SEDONA "
                "search: use it with method='dgl' (or 'associated', which "
                "takes only its boundaries) and leave boundaries and heads "
                "unset."
            )
        if config.balance is not None:
            raise UserError("decoupling= cannot be combined with balance=.")


def _check_associated(config):
    if config.method != "associated":
        if config.label_width is not None:
            raise UserError(
                "label_width is for method='associated'; unset it, or set "
                "--config.method=associated."
            )
        return
    if config.label_width is None:
        raise UserError(
            "method='associated' needs label_width, the width n of the "
            "label codes (e.g. --config.label_width=300)."
        )
    _check_positive_int("label_width", config.label_width)
    if not config.decoder_learning_rate_factor > 0:
        raise UserError(
            "decoder_learning_rate_factor must be > 0; got "
            f"{config.decoder_learning_rate_factor}."
        )
    if config.heads is not None or config.head_width is not None:
        raise UserError(
            "method='associated' ends every block in a bridge: leave heads "
            "and head_width unset (a decoupling= file gives only its "
            "boundaries)."
        )
    if config.schedule not in ("parallel", "pipelined"):
        raise UserError(
            "method='associated' trains every component on every batch: "
            f"use schedule='parallel' or 'pipelined' (got "
            f"{config.schedule!r})."
        )


def _check_choice(name, value, choices):
    if value not in choices:
        raise UserError(
            f"Unknown {name} {value!r}; use one of {', '.join(choices)}."
        )


def _check_positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise UserError(f"{name} must be a positive integer; got {value!r}.")
