"""AsyncRun: what `GreedySchedule("async")` does around Keras' fit loop.

What one Keras step and epoch mean: a step is one fresh batch, taken by
block 0 (the data `fit` is given feeds block 0 only); an epoch is
`steps_per_epoch` of them. Every block counts its own epochs: block k's
epochs are its optimizer's iterations (its own trained steps) divided by
`steps_per_epoch`, so its learning-rate schedule follows its own progress.
Each block trains `block_epochs` of its own epochs (default: `fit`'s
`epochs`; counted from its optimizer's iterations, so a resumed run or a
second `fit` continues the count), then runs forward only to feed the
blocks after it; `fit` stops (`model.stop_training`) as soon as every
block has trained its epochs. A block slowed by s gets about 1 / s steps
per fresh batch, so for every block to finish, `fit` for
`schedule.total_epochs(K)` epochs (more than `block_epochs`). When the
fresh batches end, blocks use up their buffers (unread batches; a block
a few steps short makes them up on eligible ones); a block still short,
or one that made up over an epoch, is named in a warning.
"""

import json
import warnings

from localgrad.blocks.executors.asynchronous import AsyncExecutor, AsyncSettings
from localgrad.blocks.executors.threaded import ThreadedExecutor
from localgrad.errors import UserError


class AsyncRun:
    """Installs the asynchronous executor on a model and reports on it.

    Example:

    ```python
    run = AsyncRun(AsyncSettings(buffer_size=30), block_epochs=None)
    run.begin(model, params)      # on_train_begin
    run.epoch_logs(logs)          # on_epoch_end: adds the statistics
    run.end()                     # on_train_end
    ```

    Args:
        settings: The checked `AsyncSettings`.
        block_epochs: Epochs each block trains (None: `fit`'s epochs).
        simulated: Simulate the block order (`AsyncExecutor`) or run one
            thread per block (`ThreadedExecutor`); None: threads when
            the blocks are on several devices.
        verbose: Print a summary line at the end of `fit`.
    """

    def __init__(
        self,
        settings: AsyncSettings,
        block_epochs: float | None,
        simulated: bool | None,
        verbose: int,
    ):
        self.settings = settings
        self.block_epochs = block_epochs
        self.simulated = simulated
        self.verbose = verbose
        self.executor = None
        self.model = None
        self.steps_per_epoch = None

    def begin(self, model, params: dict) -> None:
        """Builds the executor, sets its targets and resumes its order.

        Raises:
            ValueError: for settings that do not fit the model, or data
                whose number of steps per epoch is unknown.
        """
        steps = params.get("steps")
        if not steps:
            raise UserError(
                "GreedySchedule('async') counts every block's epochs in "
                "steps, but fit does not know its steps per epoch: pass "
                "steps_per_epoch= to fit (or data of known length)."
            )
        if self.executor is not None and self.executor.running:
            self.executor.stop()  # A fit that raised left workers running.
        self.model, self.steps_per_epoch = model, int(steps)
        settings = self.settings.check(model.num_blocks)
        devices = {device for device in model.devices if device is not None}
        simulated = self.simulated
        if simulated is None:
            simulated = len(devices) < 2
        kind = AsyncExecutor if simulated else ThreadedExecutor
        self.executor = kind(
            model.blocks,
            model.distribute_strategy,
            eager=bool(model.run_eagerly),
            jit_compile=bool(model.jit_compile),
            settings=settings,
        )
        epochs = self.block_epochs or params["epochs"]
        self.executor.target_steps = [
            round(epochs * self.steps_per_epoch)
        ] * model.num_blocks
        state = getattr(model, "schedule_state", None)
        if state:
            # A resumed run: the order goes on, the (empty) buffers fill
            # again during a new warm-up.
            self.executor.order.set_state(json.loads(state)["order"])
            self.executor.order.restart_warmup()
        model.trained_blocks = None
        model.execution = self.executor

    def batch_end(self) -> None:
        """Stops `fit` once every block has trained its epochs."""
        if self.executor.done:
            self.model.stop_training = True

    def epoch_logs(self, logs: dict) -> None:
        """Adds per-block epochs and buffer statistics to `logs`.

        `block_k_epochs` (own trained steps / steps per epoch),
        `block_k_forward_steps`, and for the buffer block k reads
        (k >= 1): `block_k_skips`, `block_k_reads_per_write` (reuse),
        `buffer_k_filled` and `buffer_k_available` (occupancy). Keras'
        TensorBoard callback, placed after the schedule, writes them.
        Also keeps the order's state on the model (`schedule_state`) for
        `EpochCheckpoint`.
        """
        executor = self.executor
        for block, steps in enumerate(executor.block_steps):
            logs[f"block_{block}_epochs"] = steps / self.steps_per_epoch
            logs[f"block_{block}_forward_steps"] = executor.forward_steps[block]
        for block, stats in enumerate(executor.statistics(), start=1):
            logs[f"block_{block}_skips"] = stats["skips"]
            logs[f"block_{block}_reads_per_write"] = stats["reads"] / max(
                stats["writes"], 1
            )
            logs[f"buffer_{block}_filled"] = stats["filled"]
            logs[f"buffer_{block}_available"] = stats["available"]
        self.model.schedule_state = json.dumps(
            {"order": executor.order.get_state()}
        )

    def end(self) -> None:
        """Lets the buffers drain, warns of blocks short of their epochs."""
        executor = self.executor
        try:
            executor.finish_run()
        finally:
            self.model.execution = "synchronous"
            self.model.trained_blocks = None
        epochs = [s / self.steps_per_epoch for s in executor.block_steps]
        short = [k for k in range(len(epochs)) if executor.trains(k)]
        made_up = [s / self.steps_per_epoch for s in executor.made_up_steps]
        if short or max(made_up) > 1:
            warnings.warn(
                f"fit ended too early: blocks {short} did not train their "
                f"epochs (epochs trained: {[round(e, 2) for e in epochs]}), "
                "and blocks made up "
                f"{[round(e, 2) for e in made_up]} epochs on the last "
                "batches of their buffers; fit for "
                "schedule.total_epochs(num_blocks) epochs.",
                stacklevel=2,
            )
        if self.verbose:
            skips = [s["skips"] for s in executor.statistics()]
            print(
                f"GreedySchedule (async): epochs per block "
                f"{[round(e, 2) for e in epochs]}, skips per block "
                f"{[0] + skips}"
            )
