"""SynchronousExecutor: block k finishes before block k + 1 starts.

Each block's step is its own compiled execution, so that block k's
activations, gradients and update are finished and freed before block
k + 1's forward starts: the step's memory peak is that of its largest
block, not of the whole network. (Tracing every block into one graph, even
with per-block tapes and control dependencies, lets TensorFlow keep earlier
blocks' tensors alive and does not lower the peak.) The hand-over between
blocks is the block's output alone, detached.
"""

from localgrad.blocks import block_step
from localgrad.blocks.block import run_chain
from localgrad.blocks.executors.executor import Executor
from localgrad.blocks.hand_over import HandOver


class SynchronousExecutor(Executor):
    """Runs the blocks one after another, each as its own execution.

    Example:

    ```python
    executor = SynchronousExecutor(model.blocks, model.distribute_strategy)
    executor.train(x, y, None, trained=[1])  # block 0 forward, block 1 trains
    ```
    """

    name = "synchronous"

    def __init__(self, blocks, strategy, eager=False, jit_compile=False):
        super().__init__(blocks, strategy, eager, jit_compile)
        self._train = self.compiled_steps(block_step.train_step)
        self._forward = self.compiled_steps(block_step.forward_step)

    def train(self, x, y, sample_weight, trained) -> None:
        def step(block, hand_over):
            if block.index in trained:
                return self._train[block.index](hand_over, y, sample_weight)
            return self._forward[block.index](hand_over)

        run_chain(self.blocks[: trained[-1] + 1], HandOver(x), step)

    def finish_epoch(self) -> None:
        """Nothing to do: a synchronous step leaves no batch in flight."""
        return None
