"""Executor: how the blocks of a training step run."""

import abc
from collections.abc import Sequence

import tensorflow as tf

from localgrad.blocks import block_step
from localgrad.blocks.block import Block


class Executor(abc.ABC):
    """Runs a GreedyModel's blocks for one training step.

    Schedules (`GreedySchedule`) choose which blocks train; an executor
    chooses how they run: one after the other (`SynchronousExecutor`), or
    all at once on one-step buffers (`PipelinedExecutor`). An executor may
    hold batches in flight between steps; `finish_epoch` trains the blocks
    on them, so that no batch is lost at the end of an epoch.

    Example:

    ```python
    executor = SynchronousExecutor(model.blocks, strategy)
    executor.train(x, y, None, trained=[0, 1, 2])
    executor.finish_epoch()
    ```

    Args:
        blocks: The model's compiled blocks.
        strategy: The model's distribution strategy.
        eager: Run the steps eagerly (`run_eagerly`).
        jit_compile: Compile each block's gradient computation with XLA.
    """

    name = "executor"

    def __init__(
        self,
        blocks: Sequence[Block],
        strategy: tf.distribute.Strategy,
        eager: bool = False,
        jit_compile: bool = False,
    ):
        self.blocks = list(blocks)
        self.strategy = strategy
        self.eager = bool(eager)
        self.jit_compile = bool(jit_compile) and not self.eager

    @abc.abstractmethod
    def train(self, x, y, sample_weight, trained: Sequence[int]) -> None:
        """Feeds one batch to the blocks.

        Args:
            x: The batch's inputs (per replica, under a strategy).
            y: Its targets.
            sample_weight: Its per-example weights, or None.
            trained: The blocks that train (sorted indices); blocks before
                the first run forward only, blocks after the last not at all.
        """

    def compiled_steps(self, make_step) -> list:
        """One compiled per-replica step per block, from `make_step`.

        Example:

        ```python
        self._train = self.compiled_steps(block_step.train_step)
        ```

        Args:
            make_step: `block_step.train_step` or `block_step.forward_step`
                (a function of a block and `jit_compile`).
        """
        return [
            block_step.on_replicas(
                self.strategy, make_step(block, self.jit_compile), self.eager
            )
            for block in self.blocks
        ]

    @property
    def in_flight(self) -> bool:
        """Whether batches wait in the executor for some blocks."""
        return False

    @abc.abstractmethod
    def finish_epoch(self) -> None:
        """Trains the blocks on every batch still in flight."""
