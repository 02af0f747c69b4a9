"""PipelinedExecutor: all blocks at once, on one-step buffers.

At step t block 0 trains on batch t while block k > 0 trains on what block
k - 1 produced at step t - 1 (with that batch's targets), read from a
one-step buffer on block k's device. The K block steps of a step have no
data dependency on each other: each is its own compiled execution, and
all K are dispatched at once, each from its own thread, then joined, so
that they run at the same time on their devices. (One execution holding
all K steps is not enough: on worker tasks of a cluster, TensorFlow runs
the remote parts of one multi-device function one after the other; calls
from separate threads run at the same time.) Only detached block outputs
cross devices: each block's step ends by copying its output onto the next
block's device.

The pipeline fills during the first K - 1 steps of an epoch and drains in
`finish_epoch`: every block trains on every batch exactly once. Because a
buffer holds the output block k - 1 computed while training on the batch,
block k sees the very tensors it would see in the synchronous schedule:
pipelining changes when a block trains, not on what.
"""

import concurrent.futures

import tensorflow as tf

from localgrad.blocks import block_step
from localgrad.blocks.executors.executor import Executor
from localgrad.blocks.hand_over import HandOver
from localgrad.errors import UserError


class PipelinedExecutor(Executor):
    """Runs every block at every step on its predecessor's last output.

    Example:

    ```python
    executor = PipelinedExecutor(model.blocks, model.distribute_strategy)
    for x, y in batches:
        executor.train(x, y, None, trained=range(model.num_blocks))
    executor.finish_epoch()  # the last K - 1 batches reach the last blocks
    ```
    """

    name = "pipelined"

    def __init__(self, blocks, strategy, eager=False, jit_compile=False):
        super().__init__(blocks, strategy, eager, jit_compile)
        self._steps = [
            block_step.on_replicas(strategy, self._handing_on(k), self.eager)
            for k in range(len(self.blocks))
        ]
        # One thread per block: its step's call waits for its device.
        self._threads = concurrent.futures.ThreadPoolExecutor(
            len(self.blocks), thread_name_prefix="localgrad-block"
        )
        # The batch waiting for block k: (hand-over, y, sample_weight) on
        # block k's device, or None. Entry 0 is always None.
        self._buffers = [None] * len(self.blocks)

    @property
    def in_flight(self) -> bool:
        return any(buffer is not None for buffer in self._buffers)

    def train(self, x, y, sample_weight, trained) -> None:
        if list(trained) != list(range(len(self.blocks))):
            raise UserError(
                f"The pipelined executor trains every block at every step, "
                f"but trained_blocks={list(trained)}: a sequential or "
                "multi-lap schedule cannot be pipelined. Use "
                "GreedySchedule('pipelined') alone, or a sequential schedule "
                "without pipelining."
            )
        self._run_tick([(HandOver(x), y, sample_weight)] + self._buffers[1:])

    def finish_epoch(self) -> None:
        while self.in_flight:
            self._run_tick([None] + self._buffers[1:])

    def _run_tick(self, batches):
        """Trains each block that has a batch, all at once; keeps what
        they hand on as the next tick's buffers."""
        running = {
            k: self._threads.submit(self._steps[k], *batch)
            for k, batch in enumerate(batches)
            if batch is not None
        }
        # Every step finishes (or fails) before the tick ends.
        concurrent.futures.wait(running.values())
        produced = {k: future.result() for k, future in running.items()}
        self._buffers = [None] + [
            produced.get(k - 1) for k in range(1, len(self.blocks))
        ]

    def _handing_on(self, k):
        """Block k's training step, its output (with the batch's targets)
        copied onto block k + 1's device."""
        train = block_step.train_step(self.blocks[k], self.jit_compile)
        following = self.blocks[min(k + 1, len(self.blocks) - 1)]

        def step(inputs, y, sample_weight):
            outputs = train(inputs, y, sample_weight)
            if following.device is None:
                return outputs, y, sample_weight
            with following.device_scope():
                return tf.nest.map_structure(
                    lambda t: None if t is None else tf.identity(t),
                    (outputs, y, sample_weight),
                )

        return step
