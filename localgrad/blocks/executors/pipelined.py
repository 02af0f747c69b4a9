"""PipelinedExecutor: all blocks at once, on one-step buffers.

At step t block 0 trains on batch t while block k > 0 trains on what block
k - 1 produced at step t - 1 (with that batch's targets), read from a
one-step buffer on block k's device. The K block steps of a step have no
data dependency on each other, so they are traced into one execution and
TensorFlow's runtime runs them at the same time, each on its block's
device; only detached block outputs cross devices.

The pipeline fills during the first K - 1 steps of an epoch and drains in
`finish_epoch`: every block trains on every batch exactly once. Because a
buffer holds the output block k - 1 computed while training on the batch,
block k sees the very tensors it would see in the synchronous schedule:
pipelining changes when a block trains, not on what.
"""

import functools

import tensorflow as tf

from localgrad.blocks import block_step
from localgrad.blocks.executors.executor import Executor
from localgrad.blocks.hand_over import HandOver


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
            block_step.train_step(b, self.jit_compile) for b in self.blocks
        ]
        self._ticks = {}
        # The batch waiting for block k: (hand-over, y, sample_weight) on
        # block k's device, or None. Entry 0 is always None.
        self._buffers = [None] * len(self.blocks)

    @property
    def in_flight(self) -> bool:
        return any(buffer is not None for buffer in self._buffers)

    def train(self, x, y, sample_weight, trained) -> None:
        if list(trained) != list(range(len(self.blocks))):
            raise ValueError(
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
        active = tuple(
            k for k, batch in enumerate(batches) if batch is not None
        )
        if active not in self._ticks:
            # One function per fill or drain pattern, each traced once.
            tick = functools.partial(self._tick, active)
            self._ticks[active] = (
                tick if self.eager else tf.function(tick, reduce_retracing=True)
            )
        produced = self._ticks[active](tuple(batches[k] for k in active))
        self._buffers = [None] * len(self.blocks)
        for k, batch in zip(active, produced):
            if k + 1 < len(self.blocks):
                self._buffers[k + 1] = batch

    def _tick(self, active, batches):
        """Trains the `active` blocks, each on its batch; returns the
        batches handed on, each already on the next block's device."""
        produced = []
        for k, batch in zip(active, batches):
            outputs = self.strategy.run(self._steps[k], args=batch)
            following = self.blocks[min(k + 1, len(self.blocks) - 1)]
            with following.device_scope():
                produced.append(
                    _on_device((outputs,) + tuple(batch[1:]), following.device)
                )
        return tuple(produced)


def _on_device(structure, device):
    """A copy of the tensors in `structure` on `device` (None: unchanged)."""
    if device is None:
        return structure
    return tf.nest.map_structure(
        lambda t: None if t is None else tf.identity(t), structure
    )
