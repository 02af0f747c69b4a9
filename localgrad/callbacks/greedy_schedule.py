"""GreedySchedule: which blocks a GreedyModel trains, step by step."""

import math

import keras

from localgrad.blocks.executors.asynchronous import AsyncSettings
from localgrad.callbacks.async_run import AsyncRun

MODES = ("parallel", "sequential", "multilap", "pipelined", "async")


class GreedySchedule(keras.callbacks.Callback):
    """Chooses the blocks a `GreedyModel` trains during `fit`.

    - `"parallel"` (DGL): every block trains at every step.
    - `"sequential"`: block 0 trains alone, then block 1, ...; a block not
      being trained is frozen (earlier ones run forward only, with no
      backward; later ones do not run). Block k gets a share of the run
      proportional to `epochs_per_block + k * extra_epochs_per_depth`
      (Karkar et al.'s e1 + k·e2); `fit` for `total_epochs(K)` epochs to give
      block k exactly that many epochs.
    - `"multilap"`: the sequential schedule repeated `laps` times, each lap
      with `1 / laps` of the budget: the same compute as sequential.
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

    The plan is laid over the whole `fit` (epochs × steps per epoch), and
    a line is printed whenever the trained block changes. The step count is
    absolute, so a run resumed with `initial_epoch` continues the plan.

    Example:

    ```python
    schedule = localgrad.callbacks.GreedySchedule("multilap", laps=3)
    model.fit(x, y, epochs=12, callbacks=[schedule])

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
        epochs_per_block: e1, the share of block 0.
        extra_epochs_per_depth: e2, added to the share of each deeper block.
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
        ValueError: for an unknown mode, bad laps or shares, a run too
            short to give every phase at least one step, asynchronous
            arguments with another mode, buffer_size < 1, an unknown
            sampling, a bad max_reuse, or a slowdown <= 0 or of a block
            that does not exist (checked against the model in `fit`).
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
            raise ValueError(f"Unknown schedule {mode!r}; use one of {MODES}.")
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
                raise ValueError(
                    f"block_epochs must be > 0; got {block_epochs}."
                )
            self.async_run = AsyncRun(
                settings.check(), block_epochs, simulated, verbose
            )
        elif settings != AsyncSettings() or (block_epochs, simulated) != (
            None,
            None,
        ):
            raise ValueError(
                "buffer_size, sampling, max_reuse, slowdown, seed, "
                "block_epochs, simulated, warmup_repeats and draw are for "
                f"mode='async' (got mode={mode!r})."
            )
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

    def total_epochs(self, num_blocks: int) -> float:
        """Epochs that give block k exactly e1 + k·e2 epochs per schedule.

        For `"async"`: the `fit` epochs after which every block has most
        likely trained its `block_epochs` (the slowest block gets
        `p_k / p_0` steps per fresh batch), with a 5 % margin; `fit` stops
        earlier once they all have.

        Raises:
            ValueError: for `"async"` without `block_epochs`.
        """
        if self.mode == "async":
            return self._async_fit_epochs(num_blocks)
        return sum(self._shares(num_blocks))

    def on_train_begin(self, logs=None):
        if self.mode == "async":
            self.async_run.begin(self.model, self.params)
            return
        if self.mode in ("parallel", "pipelined"):
            self.model.trained_blocks = None
            if self.mode == "pipelined":
                self.model.execution = "pipelined"
            return
        steps = self.params.get("steps")
        self._steps_per_epoch = steps or 1
        self.phases = self.plan(
            self.model.num_blocks, self.params["epochs"] * self._steps_per_epoch
        )
        self._current = None

    def plan(self, num_blocks: int, total_steps: int) -> list:
        """The phases `(block, lap, first_step, end_step)` over a run."""
        shares = self._shares(num_blocks) * self.laps
        total_share = sum(shares)
        phases, done, start = [], 0.0, 0
        for index, share in enumerate(shares):
            done += share
            end = round(done / total_share * total_steps)
            if end <= start:
                raise ValueError(
                    f"The {self.mode} schedule has {len(shares)} phases "
                    f"({num_blocks} blocks × {self.laps} laps) but the run "
                    f"has only {total_steps} steps to share between them; "
                    "train for more epochs or steps."
                )
            lap, block = divmod(index, num_blocks)
            phases.append((block, lap, start, end))
            start = end
        return phases

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch
        if self.mode in ("parallel", "pipelined", "async"):
            return
        if not self.params.get("steps"):
            self._select(epoch)

    def on_train_batch_begin(self, batch, logs=None):
        if self.mode in ("parallel", "pipelined", "async"):
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
            raise ValueError(
                "total_epochs of an 'async' schedule needs block_epochs "
                "(the epochs each block trains)."
            )
        settings = run.settings.check(num_blocks)
        speeds = [1 / settings.slowdown.get(k, 1.0) for k in range(num_blocks)]
        steps_per_fresh_batch = min(speed / speeds[0] for speed in speeds)
        return math.ceil(run.block_epochs / steps_per_fresh_batch * 1.05)

    def _shares(self, num_blocks):
        return [
            self.epochs_per_block + k * self.extra_epochs_per_depth
            for k in range(num_blocks)
        ]
