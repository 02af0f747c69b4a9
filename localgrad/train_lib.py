"""Trains and evaluates a GreedyModel as a config describes.

The only module that reads a training config (see
`localgrad.train_config.default_config` for the fields); everything it
calls takes plain arguments. `localgrad-train` is a thin wrapper around
`train_and_evaluate` and `localgrad.train_summary.summary`.

Layout of the work directory:

- `.lock`: held while a run uses the directory, so that a second run
  there is refused (`localgrad.workdir_lock`);
- `config.json`: the resolved config (a resumed run must match it, but
  for `epochs`, which may grow, `restart`, and `cluster` and
  `cluster_timeout`: it may resume on other machines);
- `checkpoints/epoch-NNNN.npz`: the training state after each epoch,
  written atomically and checked on resume (a damaged one is kept as
  `epoch-NNNN.npz.damaged` and the newest intact one is used; with none
  intact the run stops rather than start over, see `EpochCheckpoint`);
- `tensorboard/`: Keras' summaries (per-block losses and accuracies, with
  transport the per-block terms and Uzawa multipliers) and
  `BlockSummaries` (per-block learning rates, examples per second);
- `model.keras`: the trained GreedyModel;
- `metrics.json`: test accuracy of the classifier and of every head,
  per-epoch history, `train_seconds` and `examples_per_second` (over all
  epochs, those of an interrupted earlier invocation included) and
  `wall_time_seconds` (of this invocation);
- `accuracy_by_block.png`: test accuracy of every head against depth.
"""

import contextlib
import dataclasses
import functools
import json
import math
import os
import sys
import time
from collections.abc import Callable, Sequence

import keras
import tensorflow as tf
from ml_collections import config_dict

from localgrad import data as data_lib
from localgrad import distribute, models, plots, train_setup
from localgrad.associated import AssociatedModel
from localgrad.asynchrony.slowdown import parse_slowdown
from localgrad.callbacks import GreedySchedule, PreciseBatchNorm
from localgrad.callbacks.block_summaries import BlockSummaries
from localgrad.callbacks.checkpoint import EpochCheckpoint
from localgrad.errors import UserError
from localgrad.train_config import check_config
from localgrad.transport import Transport
from localgrad.workdir_lock import WorkdirLock

# Where a run trains, not what: a run may resume on other machines.
_MACHINE_FIELDS = ("cluster", "cluster_timeout")


@dataclasses.dataclass
class _Data:
    """The run's data sets and how many batches make an epoch."""

    train: tf.data.Dataset
    validation: tf.data.Dataset | None
    test: tf.data.Dataset
    info: data_lib.DatasetInfo
    steps_per_epoch: int
    examples_per_epoch: int
    fresh_train: Callable[[], tf.data.Dataset]


def train_and_evaluate(
    config: config_dict.ConfigDict,
    workdir: str,
    callbacks: Sequence[keras.callbacks.Callback] = (),
) -> dict:
    """Trains the configured model in `workdir`, resuming if it can.

    Checks the config, loads the data (so that missing data fail at once),
    builds and compiles the model, restores the newest checkpoint in
    `workdir/checkpoints`, trains the remaining epochs, then writes the
    model, the test metrics and the accuracy-by-block plot. Prints Keras'
    progress bar when stdout is a terminal, one line per epoch otherwise.

    Example:

    ```python
    from localgrad import train_config, train_lib
    config = train_config.default_config()
    config.epochs = 2
    metrics = train_lib.train_and_evaluate(config, "/tmp/run")
    metrics["test_accuracy"], [h["test_accuracy"] for h in metrics["heads"]]
    ```

    Args:
        config: A training config (fields of `default_config()`).
        workdir: The run's directory (created if missing). Running again
            in the same directory resumes from the last finished epoch
            (with the same config; `epochs` may be raised to continue a
            finished run).
        callbacks: Extra Keras callbacks, run after localgrad's own.

    Returns:
        The metrics also written to `workdir/metrics.json`.

    Raises:
        ValueError: for a bad config, a workdir holding another run, or
            one holding more finished epochs than `config.epochs`.
        WorkdirInUseError: if another run is using `workdir` now.
        NotADirectoryError: if `workdir` is a file.
        FileNotFoundError: if the data set is not on disk.
    """
    check_config(config)
    with WorkdirLock(workdir):
        return _train_and_evaluate(config, workdir, callbacks)


def _train_and_evaluate(config, workdir, callbacks):
    """`train_and_evaluate` once the workdir is this run's alone."""
    started = time.time()
    schedule = _schedule(config)
    _write_config(config, workdir)
    # Before any tensor or variable exists: block k on worker task k.
    devices = list(config.devices)
    if config.cluster is not None:
        workers = distribute.connect(
            config.cluster, timeout=config.cluster_timeout
        )
        devices = devices or workers[: _num_blocks(config)]
    # Seeds first: tf.data derives its shuffling seeds from the global one.
    keras.utils.set_random_seed(config.seed)
    data = _load_data(config)
    policy = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(config.mixed_precision)
    try:
        with _naming_lost_workers(config):
            model, test, checkpoint = _train(
                config, workdir, data, schedule, devices, callbacks
            )
    finally:
        keras.mixed_precision.set_global_policy(policy)
    metrics = _metrics(config, model, data, test, checkpoint.history)
    metrics["wall_time_seconds"] = time.time() - started
    with open(os.path.join(workdir, "metrics.json"), "w") as file:
        json.dump(metrics, file, indent=2)
    heads = metrics["heads"]
    plots.plot_accuracy_by_block(
        [head["depth"] for head in heads],
        [head["test_accuracy"] for head in heads],
        path=os.path.join(workdir, "accuracy_by_block.png"),
        head_names=[head["head"] for head in heads],
        num_units=model.network.num_units,
        title=(
            f"{config.model} on {config.dataset}: {config.method}, "
            f"K = {model.num_blocks}"
        ),
    )
    return metrics


def _schedule(config):
    """The config's GreedySchedule; `epochs` are each block's own if async."""
    if config.schedule == "async":
        return GreedySchedule(
            "async",
            buffer_size=config.buffer_size,
            sampling=config.sampling,
            max_reuse=config.max_reuse,
            slowdown=parse_slowdown(config.slowdown),
            seed=config.seed,
            block_epochs=config.epochs,
        )
    return GreedySchedule(
        config.schedule,
        laps=config.laps,
        epochs_per_block=config.e1,
        extra_epochs_per_depth=config.e2,
    )


def _fit_epochs(config, schedule, num_blocks):
    """`epochs`, or under async enough for every block to train them."""
    if config.schedule == "async":
        return schedule.total_epochs(num_blocks)
    return config.epochs


def _train(config, workdir, data, schedule, devices, callbacks):
    """Builds (or restores) the model, fits it, saves and tests it."""
    model = _build_compiled_model(config, data, schedule, devices)
    checkpoint = EpochCheckpoint(
        os.path.join(workdir, "checkpoints"), config.keep_checkpoints
    )
    initial_epoch = checkpoint.restore(model, start_over=config.restart)
    if initial_epoch > config.epochs:
        raise UserError(
            f"{workdir} holds a run with {initial_epoch} finished "
            f"epochs, more than epochs={config.epochs}: set epochs >= "
            f"{initial_epoch} to continue it, or use a new workdir."
        )
    train = data.train.repeat()
    if initial_epoch and config.replay_data_on_resume:
        train = train.skip(initial_epoch * data.steps_per_epoch)
    log_dir = os.path.join(workdir, "tensorboard")
    # Each estimate reads a new pipeline from its start: the same batches
    # whether the run resumed or not.
    precise_bn = []
    if config.precise_bn_batches:
        precise_bn = [
            PreciseBatchNorm(
                min(config.precise_bn_batches, data.steps_per_epoch),
                lambda: data.fresh_train().repeat(),
                notice=True,
            )
        ]
    model.fit(
        train,
        epochs=_fit_epochs(config, schedule, model.num_blocks),
        initial_epoch=initial_epoch,
        steps_per_epoch=data.steps_per_epoch,
        validation_data=data.validation,
        callbacks=[
            schedule,
            keras.callbacks.TensorBoard(log_dir, write_graph=False),
            BlockSummaries(log_dir, data.examples_per_epoch),
            *precise_bn,  # Before the checkpoint, which then holds it.
            checkpoint,
            *callbacks,
        ],
        verbose=1 if sys.stdout.isatty() else 2,
        shuffle=False,  # The data set shuffles itself.
    )
    model.save(os.path.join(workdir, "model.keras"))
    test = model.evaluate(data.test, return_dict=True, verbose=0)
    return model, test, checkpoint


def _naming_lost_workers(config):
    """Names a worker task that dies or freezes during the run (clusters).

    A dead worker fails the step: the error names it. A frozen one would
    block the step for ever: after `cluster_timeout` seconds of silence the
    process ends, naming it (exit code 75).
    """
    watching = contextlib.ExitStack()
    if config.cluster is not None:
        watching.enter_context(
            distribute.stopping_on_frozen_workers(
                config.cluster, patience=config.cluster_timeout
            )
        )
        watching.enter_context(
            distribute.reporting_lost_workers(config.cluster)
        )
    return watching


def _num_blocks(config):
    """How many blocks the config's model has."""
    if config.method == "backprop":
        return 1
    if config.boundaries:
        return len(config.boundaries) + 1
    return config.num_blocks


# The fields a resumed run may change: more epochs continue a run.
_RESUMABLE_CHANGES = ("epochs", "restart")


def _write_config(config, workdir):
    """Writes config.json; a resumed run must have the same config.

    Only `epochs` may differ: a run started again with more epochs
    continues where it stopped (its learning-rate schedule and greedy
    schedule then span the new number of epochs). With `restart`, the old
    run's checkpoints are set aside, and any config may start over.
    """
    resolved = json.loads(json.dumps(config.to_dict()))
    path = os.path.join(workdir, "config.json")
    has_checkpoints = bool(
        EpochCheckpoint(os.path.join(workdir, "checkpoints")).checkpoints()
    )
    if has_checkpoints and os.path.exists(path) and not config.restart:
        with open(path) as file:
            try:
                previous = json.load(file)
            except ValueError as error:
                raise UserError(
                    f"{path} is damaged ({error}), so the run cannot be "
                    "checked before resuming: restore it from a copy, or "
                    "start over with --config.restart=true (the old "
                    "checkpoints are kept aside)."
                ) from error
        changed = sorted(
            key
            for key in set(previous) | set(resolved)
            if previous.get(key) != resolved.get(key)
            and key not in _RESUMABLE_CHANGES + _MACHINE_FIELDS
        )
        if changed:
            raise UserError(
                f"{workdir} holds checkpoints of a run with a different "
                f"config (fields {changed} differ from its config.json). "
                "Resume with the same config, or use a new workdir."
            )
    with open(path, "w") as file:
        json.dump(resolved, file, indent=2, sort_keys=True)


def _load_data(config):
    """Loads the splits (failing at once if absent) and sizes an epoch."""
    common = dict(
        data_dir=config.data_dir,
        validation_fraction=config.validation_fraction,
        seed=config.seed,
    )
    # Whole batches only: one shape to trace (and to compile with XLA).
    fresh_train = functools.partial(
        data_lib.load,
        config.dataset,
        "train",
        config.batch_size,
        augment=config.augment,
        drop_remainder=True,
        **common,
    )
    train = fresh_train()
    test = data_lib.load(
        config.dataset, "test", config.eval_batch_size, **common
    )
    validation = None
    if config.validation_fraction > 0:
        validation = data_lib.load(
            config.dataset, "validation", config.eval_batch_size, **common
        )
    info = data_lib.info(config.dataset)
    # Examples in one pass (exact for the in-memory data sets).
    num_train = info.num_train_examples - round(
        config.validation_fraction * info.num_train_examples
    )
    batches = int(train.cardinality())
    if batches < 0:  # Unknown to tf.data (e.g. a filtered split).
        batches = num_train // config.batch_size
    if batches < 1:
        raise UserError(
            f"batch_size={config.batch_size} is larger than the "
            f"{num_train} training examples of {config.dataset}; lower it."
        )
    steps_per_execution = config.steps_per_execution
    if config.steps_per_epoch is not None:
        steps = config.steps_per_epoch
    else:
        steps = math.ceil(batches / steps_per_execution) * steps_per_execution
    examples = steps * config.batch_size
    if config.label_smoothing > 0:  # Keras smooths one-hot labels only.

        def one_hot(images, labels):
            return images, tf.one_hot(labels, info.num_classes)

        train, test = train.map(one_hot), test.map(one_hot)
        validation = validation and validation.map(one_hot)
    return _Data(train, validation, test, info, steps, examples, fresh_train)


def _build_compiled_model(config, data, schedule, devices):
    network = models.build(
        config.model,
        data.info.input_shape,
        data.info.num_classes,
        width=config.width,
    )
    model = train_setup.build_greedy_model(
        network,
        config.method,
        num_blocks=config.num_blocks,
        boundaries=tuple(config.boundaries) or None,
        heads=config.heads,
        head_width=config.head_width,
        balance=config.balance,
        decoupling=config.decoupling,
        transport=_transport(config),
        devices=tuple(devices),
        label_width=config.label_width,
        decoder_learning_rate_factor=config.decoder_learning_rate_factor,
        precise_batch_norm=config.precise_bn_batches,
    )
    total_steps = config.epochs * data.steps_per_epoch
    block_steps = train_setup.block_train_steps(
        schedule, model.num_blocks, config.epochs, data.steps_per_epoch
    )
    learning_rates = [
        _learning_rate(config, steps / total_steps, data.steps_per_epoch)
        for steps in block_steps
    ]
    model.compile(
        optimizer=train_setup.build_optimizer(
            config.optimizer,
            _learning_rate(config, 1.0, data.steps_per_epoch),
            momentum=config.momentum,
            nesterov=config.nesterov,
            weight_decay=config.weight_decay,
        ),
        loss=train_setup.build_loss(config.label_smoothing),
        metrics=["accuracy"],
        jit_compile=config.jit,
        steps_per_execution=config.steps_per_execution,
    )
    if config.lr_schedule != "constant" and config.schedule != "parallel":
        # Each block's schedule spans the steps that block trains.
        train_setup.set_block_learning_rates(model, learning_rates)
    return model


def _transport(config):
    """The config's `Transport` (None without transport_tau/uzawa_step)."""
    if config.transport_tau is not None:
        return Transport(
            tau=config.transport_tau, varying=config.transport_varying
        )
    if config.uzawa_step is not None:
        return Transport(
            uzawa_step=config.uzawa_step, uzawa_every=config.uzawa_every
        )
    return None


def _learning_rate(config, share, steps_per_epoch):
    """The config's learning rate over `share` of the run's steps."""
    total = max(round(share * config.epochs * steps_per_epoch), 1)

    def steps(epochs):
        return round(share * epochs * steps_per_epoch)

    return train_setup.learning_rate_schedule(
        config.lr_schedule,
        config.learning_rate,
        total,
        warmup_steps=steps(config.warmup_epochs),
        decay_boundaries=[steps(e) for e in config.lr_decay_epochs],
        decay_factor=(tuple(config.lr_decay_factors) or config.lr_decay_factor),
    )


def _metrics(config, model, data, test, history):
    """The content of metrics.json."""
    ends = [end for _, end in model.block_ranges]
    heads = []
    for block in range(model.num_blocks):
        last = block == model.num_blocks - 1
        if isinstance(model, AssociatedModel):  # Shortcut through bridge k.
            layer, name = model.bridges[block], "bridge"
        else:
            layer = model.network.classifier if last else model.heads[block]
            name = "classifier" if last else getattr(layer, "head_name", None)
        heads.append(
            {
                "block": block,
                "depth": ends[block],
                "head": name or type(layer).__name__,
                "test_accuracy": float(test[f"block_{block}_accuracy"]),
            }
        )
    timed = [
        r["examples_per_second"] for r in history if "examples_per_second" in r
    ]
    train_seconds = sum(data.examples_per_epoch / rate for rate in timed)
    examples = data.examples_per_epoch * len(timed)
    return {
        "test_accuracy": float(test["accuracy"]),
        "test_loss": float(test[f"block_{model.num_blocks - 1}_loss"]),
        "heads": heads,
        "test": {name: float(value) for name, value in test.items()},
        "num_blocks": model.num_blocks,
        "boundaries": list(model.boundaries),
        "num_units": model.network.num_units,
        "epochs": len(history),
        "steps_per_epoch": data.steps_per_epoch,
        "history": history,
        "train_seconds": train_seconds,
        "examples_per_second": examples / train_seconds
        if train_seconds
        else None,
        "config": json.loads(json.dumps(config.to_dict())),
    }
