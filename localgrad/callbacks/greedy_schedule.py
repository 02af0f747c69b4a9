"""GreedySchedule: which blocks a GreedyModel trains, step by step."""

import math

import keras

MODES = ("parallel", "sequential", "multilap", "pipelined")
# The schedules that train every block at every step, for any length.
EVERY_STEP = ("parallel", "pipelined")


class GreedySchedule(keras.callbacks.Callback):
    """Chooses the blocks a `GreedyModel` trains during `fit`.

    - `"parallel"` (DGL): every block trains at every step, for as many
      epochs as `fit` runs.
    - `"sequential"` (Belilovsky et al. 2019; Karkar et al. 2023): block 0
      trains alone for e1 epochs, then block 1 for e1 + e2 epochs, ...,
      block k for e1 + k·e2 epochs (`epochs_per_block` = e1,
      `extra_epochs_per_depth` = e2; Karkar et al. use 50 and 10). A block
      not being trained is frozen: earlier ones run forward only, with no
      backward; later ones do not run.
    - `"multilap"` (Karkar et al.): the sequential schedule repeated `laps`
      times, block k training (e1 + k·e2) / laps epochs in each lap: the
      same compute as sequential.
    - `"pipelined"`: every block trains at every step, all blocks at once,
      block k on what block k - 1 produced at the step before (the model's
      `execution = "pipelined"`; each block on its device when the model
      was given `devices=`). The pipeline fills at the start of every
      epoch and is drained at its end, so every block trains on every
      batch exactly once per epoch. Cannot be combined with a sequential
      or multi-lap schedule.

    e1 and e2 are epochs, so a sequential or multi-lap run has a fixed
    length, `total_epochs(K)` = Σ_k (e1 + k·e2): `fit` with exactly that
    many epochs, or `fit` raises a `ValueError` that gives the number (the
    schedule cannot stretch or cut a block's epochs silently). The phases
    are laid out in steps (epochs × steps per epoch, to the nearest step),
    so fractional epochs per lap work; a line is printed whenever the
    trained block changes. The step count is absolute, so a run resumed
    with `initial_epoch` continues the plan. Each block optimizer counts
    only the steps its block trains, so a per-block learning-rate schedule
    over `localgrad.train_setup.block_train_steps` spans the block's own
    phases (all its laps).

    Example:

    ```python
    schedule = localgrad.callbacks.GreedySchedule(
        "multilap", laps=2, epochs_per_block=2, extra_epochs_per_depth=1)
    schedule.total_epochs(3)  # 2 + 3 + 4 = 9
    model.fit(x, y, epochs=schedule.total_epochs(3), callbacks=[schedule])
    ```

    Args:
        mode: `"parallel"`, `"sequential"`, `"multilap"` or `"pipelined"`.
        laps: The number of laps (`"multilap"` only).
        epochs_per_block: e1, the epochs of block 0.
        extra_epochs_per_depth: e2, the epochs each deeper block adds.
        verbose: Print a line when the trained block changes.

    Raises:
        ValueError: for an unknown mode, bad laps or epochs; at the start of
            `fit`, for a run whose epochs are not `total_epochs(K)` or with
            a phase too short to get a step.
    """

    def __init__(
        self,
        mode: str = "parallel",
        laps: int = 1,
        epochs_per_block: float = 1.0,
        extra_epochs_per_depth: float = 0.0,
        verbose: int = 1,
    ):
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"Unknown schedule {mode!r}; use one of {MODES}.")
        if mode != "multilap" and laps != 1:
            raise ValueError(
                f"laps={laps} is only for mode='multilap' (got {mode!r})."
            )
        if laps < 1:
            raise ValueError(f"laps must be at least 1; got {laps}.")
        if epochs_per_block <= 0 or extra_epochs_per_depth < 0:
            raise ValueError(
                "epochs_per_block must be > 0 and extra_epochs_per_depth "
                f">= 0; got {epochs_per_block} and {extra_epochs_per_depth}."
            )
        self.mode = mode
        self.laps = laps
        self.epochs_per_block = epochs_per_block
        self.extra_epochs_per_depth = extra_epochs_per_depth
        self.verbose = verbose
        self.phases = []
        self._steps_per_epoch = 1
        self._epoch = 0
        self._current = None

    def block_epochs(self, num_blocks: int) -> list[float]:
        """The epochs each block trains over the whole run: e1 + k·e2."""
        return [
            self.epochs_per_block + k * self.extra_epochs_per_depth
            for k in range(num_blocks)
        ]

    def total_epochs(self, num_blocks: int) -> int:
        """The epochs `fit` must run: Σ_k (e1 + k·e2), laps included.

        Raises:
            ValueError: for the parallel and pipelined schedules (any
                length suits them), or if the sum is not a whole number of
                epochs.
        """
        if self.mode in EVERY_STEP:
            raise ValueError(
                f"The {self.mode} schedule trains every block at every "
                "step; it fits any number of epochs and has no total_epochs."
            )
        total = sum(self.block_epochs(num_blocks))
        if not math.isclose(total, round(total), abs_tol=1e-9):
            raise ValueError(
                f"The {self.mode} schedule with e1={self.epochs_per_block} "
                f"and e2={self.extra_epochs_per_depth} trains {num_blocks} "
                f"blocks for {total:g} epochs, not a whole number: choose "
                "e1 and e2 whose sum over the blocks is whole."
            )
        return round(total)

    def check_epochs(self, num_blocks: int, epochs: int) -> None:
        """Raises a `ValueError` unless a run of `epochs` fits the plan."""
        if self.mode in EVERY_STEP:
            return
        expected = self.total_epochs(num_blocks)
        if epochs != expected:
            per_block = " + ".join(
                f"{e:g}" for e in self.block_epochs(num_blocks)
            )
            raise ValueError(
                f"The {self.mode} schedule trains block k for e1 + k*e2 "
                f"epochs (e1={self.epochs_per_block}, e2="
                f"{self.extra_epochs_per_depth}): {per_block} = {expected} "
                f"epochs for {num_blocks} blocks, but the run has {epochs}. "
                f"Fit for epochs={expected} (schedule.total_epochs("
                f"{num_blocks})), or change e1 and e2."
            )

    def plan(self, num_blocks: int, steps_per_epoch: int = 1) -> list:
        """The phases `(block, lap, first_step, end_step)` of the run.

        Example:

        ```python
        GreedySchedule("sequential", epochs_per_block=2,
                       extra_epochs_per_depth=1).plan(3, steps_per_epoch=10)
        # [(0, 0, 0, 20), (1, 0, 20, 50), (2, 0, 50, 90)]
        ```

        Args:
            num_blocks: K.
            steps_per_epoch: Training steps in one epoch.

        Returns:
            One phase per block and lap, in order; steps count from 0.

        Raises:
            ValueError: if a phase would get no step.
        """
        phases, start = [], 0
        for index, exact_end in enumerate(self._phase_ends(num_blocks)):
            lap, block = divmod(index, num_blocks)
            end = round(exact_end * steps_per_epoch)
            if end <= start:
                epochs = self.block_epochs(num_blocks)[block] / self.laps
                raise ValueError(
                    f"In the {self.mode} schedule block {block} trains "
                    f"{epochs:g} epochs per lap, which is no step at "
                    f"{steps_per_epoch} steps per epoch; use fewer laps "
                    "or more epochs per block."
                )
            phases.append((block, lap, start, end))
            start = end
        return phases

    def on_train_begin(self, logs=None):
        if self.mode in EVERY_STEP:
            self.model.trained_blocks = None
            if self.mode == "pipelined":
                self.model.execution = "pipelined"
            return
        num_blocks = self.model.num_blocks
        self.check_epochs(num_blocks, self.params["epochs"])
        steps = self.params.get("steps")
        if not steps and any(
            not math.isclose(end, round(end), abs_tol=1e-6)
            for end in self._phase_ends(num_blocks)
        ):
            raise ValueError(
                f"The {self.mode} schedule has phases of fractional epochs "
                "but fit does not know its steps per epoch: pass "
                "steps_per_epoch to fit, or choose whole epochs per lap."
            )
        self._steps_per_epoch = steps or 1
        self.phases = self.plan(num_blocks, self._steps_per_epoch)
        self._current = None

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch
        if self.mode in EVERY_STEP:
            return
        if not self.params.get("steps"):
            self._select(epoch)

    def on_train_batch_begin(self, batch, logs=None):
        if self.mode in EVERY_STEP:
            return
        if self.params.get("steps"):
            self._select(self._epoch * self._steps_per_epoch + batch)

    def on_train_batch_end(self, batch, logs=None):
        # The epoch's last batch: drain the pipeline before Keras reads the
        # epoch's metrics and validates.
        steps = self.params.get("steps")
        if self.mode == "pipelined" and steps and batch + 1 >= steps:
            self.model.finish_epoch()

    def on_epoch_end(self, epoch, logs=None):
        if self.mode == "pipelined":
            self.model.finish_epoch()

    def on_train_end(self, logs=None):
        if self.mode == "pipelined":
            self.model.execution = "synchronous"  # Drains what is left.
        self.model.trained_blocks = None

    def _phase_ends(self, num_blocks):
        """The exact (unrounded) ends of the phases, in epochs."""
        per_lap = [e / self.laps for e in self.block_epochs(num_blocks)]
        ends, done = [], 0.0
        for _ in range(self.laps):
            for epochs in per_lap:
                done += epochs
                ends.append(done)
        return ends

    def _select(self, step):
        phase = next(
            (p for p in self.phases if p[2] <= step < p[3]), self.phases[-1]
        )
        if phase == self._current:
            return
        self._current = phase
        block, lap, first, end = phase
        self.model.trained_blocks = [block]
        if self.verbose:
            lap_text = f", lap {lap + 1}/{self.laps}" if self.laps > 1 else ""
            unit = "step" if self.params.get("steps") else "epoch"
            print(
                f"GreedySchedule ({self.mode}{lap_text}): training block "
                f"{block} of {self.model.num_blocks}, {unit}s {first}-{end - 1}"
            )
