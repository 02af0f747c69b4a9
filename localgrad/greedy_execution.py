"""GreedyExecution: which blocks a training step trains, and how.

The part of `GreedyModel` that holds a schedule's choices: the blocks a
step trains (`trained_blocks`) and the executor that runs them
(`execution`: synchronous, pipelined or asynchronous), with the batches
an executor holds in flight.
"""

from localgrad.blocks.executors import EXECUTORS, Executor
from localgrad.errors import UserError


class GreedyExecution:
    """A `GreedyModel`'s trained blocks and executor (a mixin).

    It reads the model's `blocks`, `num_blocks`, `distribute_strategy`,
    `run_eagerly` and `jit_compile`; the model's `__init__` sets the state
    it keeps: `_trained_blocks` (None: all), `_execution`
    (`"synchronous"`) and `_executors` (`{}`: made when first used).

    Example:

    ```python
    model.trained_blocks = [0]     # a sequential schedule's first stage
    model.execution = "pipelined"  # as GreedySchedule("pipelined") sets
    model.finish_epoch()           # trains on the batches in flight
    ```
    """

    @property
    def trained_blocks(self) -> list:
        """The blocks a training step trains (all by default).

        Blocks before the first trained block run forward only, in
        inference mode, with no tape; blocks after the last do not run.
        Schedules (`localgrad.callbacks.GreedySchedule`) set this.
        """
        if self._trained_blocks is None:
            return list(range(self.num_blocks))
        return list(self._trained_blocks)

    @trained_blocks.setter
    def trained_blocks(self, blocks):
        if blocks is not None:
            blocks = sorted(set(int(k) for k in blocks))
            if not blocks or not all(0 <= k < self.num_blocks for k in blocks):
                raise UserError(
                    f"trained_blocks={blocks} must name at least one block "
                    f"in 0..{self.num_blocks - 1}."
                )
            if self._execution == "pipelined" and len(blocks) < len(
                self.blocks
            ):
                raise UserError(
                    f"trained_blocks={blocks}, but the model trains "
                    "pipelined, where every block trains at every step: a "
                    "sequential or multi-lap schedule cannot be pipelined. "
                    "Use GreedySchedule('pipelined') alone, or the other "
                    "schedule without it."
                )
        self._trained_blocks = blocks

    @property
    def execution(self) -> str:
        """How a training step runs the blocks: an executor's name.

        `"synchronous"` (default): block k finishes before block k + 1
        starts, each block's step its own execution (the memory-saving
        path). `"pipelined"`: all blocks at every step, block k on what
        block k - 1 produced at the step before, each on its device; set
        by `GreedySchedule("pipelined")`, which also drains the pipeline at
        the end of every epoch (`finish_epoch`). `"async"`: asynchronous
        DGL, blocks at their own pace through replay buffers; set by
        `GreedySchedule("async")`, which gives an `AsyncExecutor` (or a
        `ThreadedExecutor`) with its settings: the setter also takes an
        `Executor` built on `model.blocks`. Setting it finishes what is in
        flight first.
        """
        return self._execution

    @execution.setter
    def execution(self, name):
        executor = None
        if isinstance(name, Executor):
            executor, name = name, name.name
        if name not in EXECUTORS:
            raise UserError(
                f"Unknown execution {name!r}; use one of {sorted(EXECUTORS)}."
            )
        if name == "pipelined" and len(self.trained_blocks) < self.num_blocks:
            raise UserError(
                f"Cannot train pipelined while trained_blocks="
                f"{self.trained_blocks}: pipelining trains every block at "
                "every step. Drop the sequential or multi-lap schedule."
            )
        if (
            name == "pipelined"
            and self.distribute_strategy.num_replicas_in_sync > 1
        ):
            raise UserError(
                "Pipelined training runs the blocks' all-reduces "
                "concurrently, which a multi-device strategy cannot order; "
                "train with MirroredStrategy synchronously (no "
                "GreedySchedule('pipelined')), or pipeline with devices= "
                "outside a strategy."
            )
        self.finish_epoch()
        self._execution = name
        if executor is not None:
            self._executors[name] = executor

    @property
    def in_flight(self) -> bool:
        """Whether batches wait in the pipeline for some blocks."""
        return any(e.in_flight for e in self._executors.values())

    def finish_epoch(self) -> None:
        """Trains every block on the batches still in flight (pipelined).

        `GreedySchedule("pipelined")` calls this at the end of every epoch;
        the training function also calls it when the data run out, and
        evaluation does before it starts. A no-op when nothing is in
        flight.
        """
        for executor in self._executors.values():
            executor.finish_epoch()

    def _executor(self):
        if self._execution not in self._executors:
            self._executors[self._execution] = EXECUTORS[self._execution](
                self.blocks,
                self.distribute_strategy,
                eager=bool(self.run_eagerly),
                jit_compile=bool(self.jit_compile),
            )
        return self._executors[self._execution]
