"""GreedySchedule: which blocks a GreedyModel trains, step by step."""

import math

import keras

from localgrad.blocks.executors.asynchronous import AsyncSettings
from localgrad.callbacks.async_run import AsyncRun
from localgrad.errors import UserError

MODES = ("parallel", "sequential", "multilap", "pipelined", "async")
# The schedules without phases: every block trains throughout the run,
# which may have any length.
EVERY_STEP = ("parallel", "pipelined", "async")


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
    - `"async"`: asynchronous DGL (Belilovsky et al., ICML 2020, §4). Block
      k > 0 reads from a replay buffer of `buffer_size` batches that block
      k - 1 fills; each block steps at its own pace. Simulated by default
      (a random block order, warm-up 0, 0, 1, 1, ..., slowed blocks drawn
      with weight 1 / slowdown, deterministic for `seed`); for real, one
      thread per block, when the model's blocks are on several devices
      (`GreedyModel(devices=...)`). A Keras step is one fresh batch, taken
      by block 0; every block counts its own epochs (`block_k_epochs` in
      the logs) and trains `block_epochs` of them (default: `fit`'s
      epochs), its learning-rate schedule following its own steps; `fit`
      stops when all have. Fit for `total_epochs(K)` epochs so that slowed
      blocks finish. Logs also hold skips, reuse and buffer occupancy
      (see `localgrad.callbacks.async_run`). The buffers are not saved in
      checkpoints: a resumed run starts with empty buffers and a new
      warm-up; the block order resumes (`EpochCheckpoint`).

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

    schedule = localgrad.callbacks.GreedySchedule(
        "async", buffer_size=30, sampling="priority_lifo", max_reuse=None,
        slowdown={3: 1 / 0.9}, block_epochs=50)   # block 3 1.11x slower
    model.fit(x, y, epochs=schedule.total_epochs(model.num_blocks),
              callbacks=[schedule])
    ```

    Args:
        mode: `"parallel"`, `"sequential"`, `"multilap"`, `"pipelined"`
            or `"async"`.
        laps: The number of laps (`"multilap"` only).
        epochs_per_block: e1, the epochs of block 0.
        extra_epochs_per_depth: e2, the epochs each deeper block adds.
        verbose: Print a line when the trained block changes.
        buffer_size: `"async"`: M, the batches each replay buffer holds.
        sampling: `"async"`: the buffers' policy, `"priority_lifo"`,
            `"fifo"` or `"uniform"` (see `localgrad.ReplayBuffer`).
        max_reuse: `"async"`: reads of a batch before it is dropped (None:
            no limit); a block with nothing left skips its turn.
        slowdown: `"async"`: `{block: factor}`, block k runs `factor`
            times slower (e.g. `{3: 1 / 0.9}`).
        seed: `"async"`: the seed of the block order and of the buffers.
        block_epochs: `"async"`: the epochs each block trains (None:
            `fit`'s epochs).
        simulated: `"async"`: True to simulate the order, False for one
            thread per block; None: threads when the blocks are on several
            devices.
        warmup_repeats: `"async"`: ticks per block in the warm-up order.
        draw: `"async"`: `"random"`, or `"round_robin"` (with
            `buffer_size=1` and `warmup_repeats=0`, the parallel schedule).

    Raises:
        ValueError: for an unknown mode, bad laps or epochs, asynchronous
            arguments with another mode, buffer_size < 1, an unknown
            sampling, a bad max_reuse, or a slowdown <= 0 or of a block
            that does not exist (checked against the model in `fit`); at
            the start of `fit`, for a sequential or multi-lap run whose
            epochs are not `total_epochs(K)` or with a phase too short to
            get a step.
    """

    def __init__(
        self,
        mode: str = "parallel",
        laps: int = 1,
        epochs_per_block: float = 1.0,
        extra_epochs_per_depth: float = 0.0,
        verbose: int = 1,
        buffer_size: int = 30,
        sampling: str = "priority_lifo",
        max_reuse: int | None = None,
        slowdown: dict | None = None,
        seed: int = 0,
        block_epochs: float | None = None,
        simulated: bool | None = None,
        warmup_repeats: int = 2,
        draw: str = "random",
    ):
        super().__init__()
        if mode not in MODES:
            raise UserError(f"Unknown schedule {mode!r}; use one of {MODES}.")
        settings = AsyncSettings(
            buffer_size,
            sampling,
            max_reuse,
            dict(slowdown or {}),
            seed,
            warmup_repeats,
            draw,
        )
        self.async_run = None
        if mode == "async":
            if block_epochs is not None and not block_epochs > 0:
                raise UserError(
                    f"block_epochs must be > 0; got {block_epochs}."
                )
            self.async_run = AsyncRun(
                settings.check(), block_epochs, simulated, verbose
            )
        elif settings != AsyncSettings() or (block_epochs, simulated) != (
            None,
            None,
        ):
            raise UserError(
                "buffer_size, sampling, max_reuse, slowdown, seed, "
                "block_epochs, simulated, warmup_repeats and draw are for "
                f"mode='async' (got mode={mode!r})."
            )
        if mode != "multilap" and laps != 1:
            raise UserError(
                f"laps={laps} is only for mode='multilap' (got {mode!r})."
            )
        if laps < 1:
            raise UserError(f"laps must be at least 1; got {laps}.")
        if epochs_per_block <= 0 or extra_epochs_per_depth < 0:
            raise UserError(
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

        For `"async"`: the `fit` epochs after which every block has most
        likely trained its `block_epochs` (the slowest block gets
        `p_k / p_0` steps per fresh batch), with a 5 % margin; `fit` stops
        earlier once they all have.

        Raises:
            ValueError: for the parallel and pipelined schedules (any
                length suits them), for `"async"` without `block_epochs`,
                or if the sum is not a whole number of epochs.
        """
        if self.mode == "async":
            return self._async_fit_epochs(num_blocks)
        if self.mode in EVERY_STEP:
            raise UserError(
                f"The {self.mode} schedule trains every block at every "
                "step; it fits any number of epochs and has no total_epochs."
            )
        total = sum(self.block_epochs(num_blocks))
        if not math.isclose(total, round(total), abs_tol=1e-9):
            raise UserError(
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
            raise UserError(
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
                raise UserError(
                    f"In the {self.mode} schedule block {block} trains "
                    f"{epochs:g} epochs per lap, which is no step at "
                    f"{steps_per_epoch} steps per epoch; use fewer laps "
                    "or more epochs per block."
                )
            phases.append((block, lap, start, end))
            start = end
        return phases

    def on_train_begin(self, logs=None):
        if self.mode == "async":
            self.async_run.begin(self.model, self.params)
            return
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
            raise UserError(
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
        if self.mode == "async":
            self.async_run.batch_end()
        # The epoch's last batch: drain the pipeline before Keras reads the
        # epoch's metrics and validates.
        steps = self.params.get("steps")
        if self.mode == "pipelined" and steps and batch + 1 >= steps:
            self.model.finish_epoch()

    def on_epoch_end(self, epoch, logs=None):
        if self.mode == "pipelined":
            self.model.finish_epoch()
        if self.mode == "async" and logs is not None:
            self.async_run.epoch_logs(logs)

    def on_train_end(self, logs=None):
        if self.mode == "pipelined":
            self.model.execution = "synchronous"  # Drains what is left.
        if self.mode == "async":
            self.async_run.end()
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

    def _async_fit_epochs(self, num_blocks):
        run = self.async_run
        if run.block_epochs is None:
            raise UserError(
                "total_epochs of an 'async' schedule needs block_epochs "
                "(the epochs each block trains)."
            )
        settings = run.settings.check(num_blocks)
        speeds = [1 / settings.slowdown.get(k, 1.0) for k in range(num_blocks)]
        steps_per_fresh_batch = min(speed / speeds[0] for speed in speeds)
        return math.ceil(run.block_epochs / steps_per_fresh_batch * 1.05)
