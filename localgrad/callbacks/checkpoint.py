"""EpochCheckpoint: the whole training state after every epoch, and resume."""

import itertools
import os
import re
import time

import keras
from absl import logging

from localgrad import checkpoint_files
from localgrad.blocks.training_state import optimizer_variables
from localgrad.errors import UserError
from localgrad.variable_names import (
    layer_variable_names,
    optimizer_variable_names,
)

_FILE = re.compile(r"^epoch-(\d+)\.npz$")
# The meta's "format" since variables are stored by name; checkpoints
# without it hold them by position (`<group>/<index>`).
_BY_NAME = "names"
_START_OVER = (
    "Use a new directory, or start over, which keeps the old files aside "
    "(localgrad-train: --config.restart=true; EpochCheckpoint.restore: "
    "start_over=True)."
)


class NoIntactCheckpointError(UserError):
    """Checkpoints exist, but none can be read: resuming is impossible."""


class EpochCheckpoint(keras.callbacks.Callback):
    """Saves everything a resumed run needs at the end of every epoch.

    A checkpoint holds the model's weights (network, heads and BatchNorm
    statistics), the variables of `model.optimizer` (its iteration count
    is the global step) and of every block optimizer of a `GreedyModel`
    (slots and iteration counts), the number of finished epochs and the
    per-epoch history, and the schedule's own state when it keeps one in
    `model.schedule_state` (a JSON string: the block order of
    `GreedySchedule("async")`; put the schedule before this callback).
    `restore` puts all of it back and returns the epoch
    to pass to `fit(initial_epoch=...)`.

    Every array is stored under its variable's name, `<group>/<name>`:
    the groups are `model`, `optimizer_0` (`model.optimizer`) and
    `optimizer_1`, ... (the block optimizers, in block order); the names
    are structural (`model/network/units/0/layers/1/gamma`,
    `optimizer_1/network/units/0/layers/0/kernel/momentum`: see
    `localgrad.variable_names`), so they are the same in every build of
    the model, and a model listing its variables in another order is
    restored exactly. A variable the checkpoint lacks, or an array the
    model has no variable for, is refused by name. Checkpoints of an
    earlier localgrad, which stored variables by position
    (`<group>/<index>`), are restored by position, with a warning.

    Each checkpoint is one `epoch-NNNN.npz` file, written to a temporary
    file, flushed to disk and renamed, so a run killed while saving leaves
    the previous checkpoint intact; each holds a manifest (shape, dtype and
    SHA-256 of every array) that `restore` checks. A damaged checkpoint is
    set aside as `epoch-NNNN.npz.damaged` with a warning, and the newest
    intact one is used instead; when none is intact, `restore` refuses to
    start over by itself (`NoIntactCheckpointError`): only
    `restore(model, start_over=True)` does, setting the old files aside.
    (`tf.train.Checkpoint` is not used: it
    does not reach a Keras 3 model's non-trainable weights, such as
    BatchNorm statistics.)

    Example:

    ```python
    checkpoint = localgrad.callbacks.EpochCheckpoint("/tmp/run/checkpoints")
    initial_epoch = checkpoint.restore(model)  # 0 on a fresh run
    model.fit(data, epochs=10, initial_epoch=initial_epoch,
              callbacks=[checkpoint])
    checkpoint.history  # one dict of logs per epoch, resumed ones included
    checkpoint.damaged  # damaged checkpoints `restore` set aside, if any
    ```

    Args:
        directory: Where the checkpoint files go (created if missing).
        max_to_keep: How many of the newest checkpoints to keep.

    Raises:
        ValueError: if `max_to_keep` is under 1.
    """

    def __init__(self, directory: str, max_to_keep: int = 2):
        super().__init__()
        if max_to_keep < 1:
            raise UserError(f"max_to_keep must be >= 1; got {max_to_keep}.")
        self.directory = directory
        self.max_to_keep = max_to_keep
        self.history = []
        self.damaged = []
        self._epoch_start = None

    def checkpoints(self) -> list[str]:
        """Paths of the checkpoints on disk, oldest first."""
        if not os.path.isdir(self.directory):
            return []
        found = sorted(
            (int(match.group(1)), name)
            for name in os.listdir(self.directory)
            if (match := _FILE.match(name))
        )
        return [os.path.join(self.directory, name) for _, name in found]

    def restore(self, model: keras.Model, start_over: bool = False) -> int:
        """Loads the newest intact checkpoint into `model`, if there is one.

        A damaged checkpoint (truncated, overwritten, not matching its
        manifest) is renamed to `<name>.damaged` (never deleted), a warning
        names it and the older checkpoint used instead, and the next older
        one is tried. If checkpoints exist but none can be read, the
        finished epochs would be lost: `restore` raises instead of starting
        over.

        Args:
            model: The compiled model, built exactly as when it was saved.
            start_over: Start at epoch 0 on purpose: every checkpoint file
                in the directory (damaged ones too) is first moved into a
                new `replaced-<date>-<time>` folder in it, never deleted.

        Returns:
            The number of finished epochs (0 if there is no checkpoint, or
            with `start_over`): the `initial_epoch` of the resumed `fit`.

        Raises:
            ValueError: if an intact checkpoint was written by a different
                model (a variable missing on either side, other shapes),
                or in a format this localgrad cannot read.
            NoIntactCheckpointError: if there were checkpoints and none
                could be read.
        """
        self.history = []
        self.damaged = []
        if start_over:
            self._set_all_aside()
            return 0
        for path in reversed(self.checkpoints()):
            try:
                arrays, meta = checkpoint_files.read_arrays(path)
            except checkpoint_files.DamagedFileError as error:
                self.damaged.append(self._set_aside(path, error))
                continue
            if "format" not in meta:
                variables = _variables_by_position(model)
                logging.warning(
                    "%s was written by an earlier localgrad, which stored "
                    "variables by position: restored by position.",
                    path,
                )
            elif meta["format"] == _BY_NAME:
                variables = _variables_by_name(model)
            else:
                raise UserError(
                    f"{path} is in the checkpoint format {meta['format']!r}, "
                    "which this localgrad cannot read: upgrade localgrad. "
                    + _START_OVER
                )
            _check_model(variables, path, arrays)
            for key, variable in variables.items():
                variable.assign(arrays[key])
            self.history = list(meta["history"])
            if meta.get("schedule_state") is not None:
                model.schedule_state = meta["schedule_state"]
            if self.damaged:
                logging.warning("Resuming from the intact checkpoint %s.", path)
            return int(meta["epochs_done"])
        if self.damaged:
            kept = ", ".join(os.path.basename(path) for path in self.damaged)
            raise NoIntactCheckpointError(
                f"No checkpoint in {self.directory} can be read (kept as "
                f"{kept}), and starting again from epoch 0 would lose the "
                "finished epochs: to start over on purpose, pass "
                "start_over=True (localgrad-train: --config.restart=true), "
                "which keeps the old files aside."
            )
        return 0

    def save(self, epochs_done: int) -> str:
        """Writes a checkpoint of `self.model` now; returns its path.

        The file is written atomically (see `localgrad.checkpoint_files`);
        then the oldest checkpoints beyond `max_to_keep` are removed.
        """
        os.makedirs(self.directory, exist_ok=True)
        arrays = {
            key: variable.numpy()
            for key, variable in _variables_by_name(self.model).items()
        }
        meta = {
            "format": _BY_NAME,
            "epochs_done": int(epochs_done),
            "history": self.history,
            "schedule_state": getattr(self.model, "schedule_state", None),
        }
        path = os.path.join(self.directory, f"epoch-{epochs_done:04d}.npz")
        checkpoint_files.write_arrays(path, arrays, meta)
        for old in self.checkpoints()[: -self.max_to_keep]:
            os.remove(old)
        return path

    def _set_aside(self, path, error):
        """Renames a damaged checkpoint out of the way; returns its name."""
        aside = path + ".damaged"
        for copy in itertools.count(1):
            if not os.path.exists(aside):
                break
            aside = f"{path}.damaged-{copy}"
        os.replace(path, aside)
        logging.warning(
            "Damaged checkpoint: %s Kept it as %s; trying the next older "
            "checkpoint.",
            error,
            aside,
        )
        return aside

    def _set_all_aside(self):
        """Moves every checkpoint file into a new `replaced-...` folder."""
        if not os.path.isdir(self.directory):
            return
        names = [
            name
            for name in os.listdir(self.directory)
            if _FILE.match(name.split(".damaged")[0])
        ]
        if not names:
            return
        aside = os.path.join(
            self.directory, time.strftime("replaced-%Y%m%d-%H%M%S")
        )
        for copy in itertools.count(1):
            if not os.path.exists(aside):
                break
            aside = f"{aside}-{copy}"
        os.makedirs(aside)
        for name in names:
            os.replace(
                os.path.join(self.directory, name), os.path.join(aside, name)
            )
        logging.warning(
            "Starting over at epoch 0 as asked; the old checkpoints are in %s.",
            aside,
        )

    def on_train_begin(self, logs=None):
        # A model whose variables cannot be named is refused now, not
        # after its first epoch.
        _variables_by_name(self.model)

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        record = {"epoch": int(epoch)}
        if self._epoch_start is not None:
            record["seconds"] = time.perf_counter() - self._epoch_start
        for name, value in (logs or {}).items():
            record[name] = float(keras.ops.convert_to_numpy(value))
        self.history.append(record)
        self.save(epoch + 1)


def _check_model(variables, path, arrays):
    """Refuses a checkpoint not holding exactly `variables`' values."""
    for key, variable in variables.items():
        if key not in arrays:
            raise UserError(
                f"{path} holds no value for the variable {key} "
                f"({variable.path}): it was written by a different model "
                f"or configuration. {_START_OVER}"
            )
        if tuple(arrays[key].shape) != tuple(variable.shape):
            raise UserError(
                f"{path}: the variable {key} ({variable.path}) has shape "
                f"{tuple(variable.shape)} in the model but "
                f"{tuple(arrays[key].shape)} in the checkpoint: it was "
                f"written by a different model or configuration. {_START_OVER}"
            )
    for key in arrays:
        if key not in variables:
            raise UserError(
                f"{path} holds {key}, a variable the model does not have: "
                f"it was written by a different model or configuration. "
                f"{_START_OVER}"
            )


def _variables_by_name(model):
    """Every variable a checkpoint holds, under its key `<group>/<name>`."""
    names = layer_variable_names(model)
    variables = {f"model/{names[id(v)]}": v for v in model.weights}
    for index, optimizer in enumerate(_optimizers(model)):
        names = optimizer_variable_names(optimizer, model)
        for variable in optimizer_variables(optimizer):
            variables[f"optimizer_{index}/{names[id(variable)]}"] = variable
    return variables


def _variables_by_position(model):
    """The keys `<group>/<index>` of checkpoints written before names."""
    groups = [("model", model.weights)] + [
        (f"optimizer_{index}", optimizer_variables(optimizer))
        for index, optimizer in enumerate(_optimizers(model))
    ]
    return {
        f"{group}/{i}": variable
        for group, variables in groups
        for i, variable in enumerate(variables)
    }


def _optimizers(model):
    """The compiled optimizer, then the block optimizers; all built."""
    optimizers = [model.optimizer] if model.optimizer is not None else []
    optimizers += list(getattr(model, "block_optimizers", []))
    for optimizer in optimizers:
        if not optimizer.built:
            optimizer.build(model.trainable_variables)
    return optimizers
