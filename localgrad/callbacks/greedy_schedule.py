"""GreedySchedule: which blocks a GreedyModel trains, step by step."""

import keras

MODES = ("parallel", "sequential", "multilap", "pipelined")


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

    The plan is laid over the whole `fit` (epochs × steps per epoch), and
    a line is printed whenever the trained block changes. The step count is
    absolute, so a run resumed with `initial_epoch` continues the plan.

    Example:

    ```python
    schedule = localgrad.callbacks.GreedySchedule("multilap", laps=3)
    model.fit(x, y, epochs=12, callbacks=[schedule])
    ```

    Args:
        mode: `"parallel"`, `"sequential"`, `"multilap"` or `"pipelined"`.
        laps: The number of laps (`"multilap"` only).
        epochs_per_block: e1, the share of block 0.
        extra_epochs_per_depth: e2, added to the share of each deeper block.
        verbose: Print a line when the trained block changes.

    Raises:
        ValueError: for an unknown mode, bad laps or shares, or a run too
            short to give every phase at least one step.
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

    def total_epochs(self, num_blocks: int) -> float:
        """Epochs that give block k exactly e1 + k·e2 epochs per schedule."""
        return sum(self._shares(num_blocks))

    def on_train_begin(self, logs=None):
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
        if self.mode in ("parallel", "pipelined"):
            return
        if not self.params.get("steps"):
            self._select(epoch)

    def on_train_batch_begin(self, batch, logs=None):
        if self.mode in ("parallel", "pipelined"):
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

    def _shares(self, num_blocks):
        return [
            self.epochs_per_block + k * self.extra_epochs_per_depth
            for k in range(num_blocks)
        ]
