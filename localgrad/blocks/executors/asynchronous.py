"""AsyncExecutor: blocks at their own pace through replay buffers (DGL §4).

Block 0 trains on the fresh batches `fit` feeds; block k > 0 reads
(detached output, labels, sample weights) batches from a `ReplayBuffer`
of M slots that block k - 1 fills, on block k's device. Which block steps
when is simulated, as in the released code of DGL §4: an `AsyncOrder`
draws one block per tick (a warm-up 0, 0, 1, 1, ..., then random draws
weighted 1 / slowdown). One call of `train` (one Keras step) runs ticks
until block 0 has taken the fresh batch. A block drawn while its buffer
has nothing eligible skips its tick (the buffer counts the skip).

Each block trains until it has done `target_steps[k]` steps of its own
(its optimizer's iterations), then runs forward only, so that the blocks
after it stay fed. `finish_run` (the end of `fit`) lets the blocks read
every batch still unread in the buffers, so that no batch block 0 trained
on is lost to the blocks after it.

`ThreadedExecutor` (localgrad/blocks/executors/threaded.py) runs the same
blocks and buffers for real, one thread per block.
"""

import dataclasses

import keras
import tensorflow as tf

from localgrad.asynchrony.order import AsyncOrder
from localgrad.asynchrony.replay_buffer import ReplayBuffer
from localgrad.asynchrony.sampling import check_sampling
from localgrad.asynchrony.slowdown import validate_slowdown
from localgrad.blocks import block_step
from localgrad.blocks.executors.executor import Executor
from localgrad.blocks.hand_over import HandOver
from localgrad.errors import UserError

# A learning rate that falls by this factor or more in one step has
# dropped (a step schedule), and the warm-up order starts again.
LEARNING_RATE_DROP = 2.0


@dataclasses.dataclass(frozen=True)
class AsyncSettings:
    """The settings of asynchronous DGL (see `GreedySchedule("async")`).

    Example:

    ```python
    settings = AsyncSettings(buffer_size=30, slowdown={3: 1 / 0.9})
    settings.check(num_blocks=6)
    ```

    Attributes:
        buffer_size: M, the batches each replay buffer holds.
        sampling: The buffers' policy: `"priority_lifo"`, `"fifo"` or
            `"uniform"`.
        max_reuse: Reads of a batch before it is dropped (None: no limit).
        slowdown: `{block: factor}`: block k runs `factor` times slower.
        seed: The seed of the block order and of the buffers.
        warmup_repeats: Ticks per block in the warm-up order.
        draw: `"random"` (the released code) or `"round_robin"`.
    """

    buffer_size: int = 30
    sampling: str = "priority_lifo"
    max_reuse: int | None = None
    slowdown: dict = dataclasses.field(default_factory=dict)
    seed: int = 0
    warmup_repeats: int = 2
    draw: str = "random"

    def check(self, num_blocks: int | None = None) -> "AsyncSettings":
        """These settings, checked (against K blocks when given).

        Returns:
            The settings with the slowdown validated.

        Raises:
            ValueError: for buffer_size < 1, an unknown sampling, a bad
                max_reuse, a slowdown of a block that does not exist or
                a factor <= 0, or a bad warm-up or draw.
        """
        buffer_size = self.buffer_size
        if (
            isinstance(buffer_size, bool)
            or not isinstance(buffer_size, int)
            or buffer_size < 1
        ):
            raise UserError(
                "buffer_size must be an integer >= 1 (the batches each "
                f"replay buffer holds); got {buffer_size!r}."
            )
        check_sampling(self.sampling, self.max_reuse)
        blocks = num_blocks or max(dict(self.slowdown or {}), default=0) + 1
        slowdown = validate_slowdown(self.slowdown, blocks)
        AsyncOrder(blocks, slowdown, self.seed, self.warmup_repeats, self.draw)
        return dataclasses.replace(self, slowdown=slowdown)


class AsyncExecutor(Executor):
    """Runs the blocks in a simulated asynchronous order over replay buffers.

    Example:

    ```python
    executor = AsyncExecutor(model.blocks, model.distribute_strategy,
                             settings=AsyncSettings(buffer_size=5))
    executor.target_steps = [100] * model.num_blocks
    for x, y in batches:
        executor.train(x, y, None, trained=range(model.num_blocks))
    executor.finish_run()
    executor.block_steps  # steps each block trained
    ```

    Args:
        blocks: The model's compiled blocks.
        strategy: The model's distribution strategy (one replica).
        eager: Run the block steps eagerly.
        jit_compile: Compile each block's gradient computation with XLA.
        settings: `AsyncSettings`.

    Raises:
        ValueError: for bad settings, or a strategy with several replicas.
    """

    name = "async"

    def __init__(
        self,
        blocks,
        strategy,
        eager=False,
        jit_compile=False,
        settings: AsyncSettings | None = None,
    ):
        super().__init__(blocks, strategy, eager, jit_compile)
        if strategy.num_replicas_in_sync > 1:
            raise UserError(
                "Asynchronous DGL runs each block on one device; it cannot "
                "run under a distribution strategy with "
                f"{strategy.num_replicas_in_sync} replicas. Place the blocks "
                "with GreedyModel(..., devices=[...]) instead."
            )
        self.settings = (settings or AsyncSettings()).check(len(self.blocks))
        self.order = AsyncOrder(
            len(self.blocks),
            self.settings.slowdown,
            self.settings.seed,
            self.settings.warmup_repeats,
            self.settings.draw,
        )
        self.buffers = None
        self.target_steps = None
        self.block_steps = [int(b.optimizer.iterations) for b in self.blocks]
        self.forward_steps = [0] * len(self.blocks)
        self.made_up_steps = [0] * len(self.blocks)
        self._weighted = False
        self._train = self.compiled_steps(block_step.train_step)
        self._forward = self.compiled_steps(block_step.forward_step)

    def train(self, x, y, sample_weight, trained) -> None:
        self._check_trained(trained)
        self._ensure_buffers(x, y, sample_weight)
        while True:
            block = next(self.order)
            if block == 0:
                self.step(0, HandOver(x), y, sample_weight)
                return
            self.read_and_step(block)

    def finish_epoch(self) -> None:
        """Nothing: the buffers carry over from one epoch to the next."""
        return None

    @property
    def running(self) -> bool:
        """Whether blocks run outside `train` (no: all run inside it)."""
        return False

    def stop(self) -> None:
        """Stops what runs outside `train` (nothing here)."""
        return None

    def finish_run(self) -> None:
        """Lets the blocks use up their buffers once the fresh data end.

        Ticks go on, block 0 (which has no fresh batch left) passing its
        turn. A block steps while its buffer holds a batch it has not
        read, or, while it is short of its target steps, any eligible
        batch: every batch written reaches the last block, and a block
        that drew a few turns fewer than block 0 makes them up.
        `made_up_steps` counts the steps of the second kind.
        """
        if not self.buffers or self.done:
            return
        while any(self.can_finish(k) for k in range(1, len(self.blocks))):
            block = next(self.order)
            if not block or not self.can_finish(block):
                continue
            short = not int(self.buffers[block - 1].statistics()["unread"])
            if self.read_and_step(block) and short:
                self.made_up_steps[block] += 1

    def can_finish(self, block: int) -> bool:
        """Whether block k > 0 has a batch to use up at the end of the run."""
        stats = self.buffers[block - 1].statistics()
        wanted = "available" if self.trains(block) else "unread"
        return bool(int(stats[wanted]))

    def read_and_step(self, block: int) -> bool:
        """Block k > 0 samples its buffer and steps; False if it skipped."""
        sample = self.buffers[block - 1].sample()
        if not bool(sample.found):
            return False
        weights = sample.sample_weight if self._weighted else None
        self.step(block, _restored(sample.features), sample.labels, weights)
        return True

    def step(self, block: int, inputs: HandOver, y, sample_weight) -> None:
        """Trains (or, past its target, runs forward) one block; hands on."""
        if self.trains(block):
            optimizer = self.blocks[block].optimizer
            before = _learning_rate(optimizer)
            outputs = self._train[block](inputs, y, sample_weight)
            self.block_steps[block] += 1
            if _learning_rate(optimizer) * LEARNING_RATE_DROP <= before:
                self.order.restart_warmup()
        else:
            outputs = self._forward[block](inputs)
            self.forward_steps[block] += 1
        if block + 1 < len(self.blocks):
            self.hand_on(block, outputs, y, sample_weight)

    def hand_on(self, block: int, outputs: HandOver, y, sample_weight) -> None:
        """Writes block k's output batch to buffer k."""
        self.buffers[block].write(_stored(outputs), y, sample_weight)

    def trains(self, block: int) -> bool:
        """Whether the block still has steps to train."""
        return (
            self.target_steps is None
            or self.block_steps[block] < self.target_steps[block]
        )

    @property
    def done(self) -> bool:
        """Whether every block has trained its target steps."""
        return self.target_steps is not None and not any(
            self.trains(block) for block in range(len(self.blocks))
        )

    def statistics(self) -> list[dict]:
        """Each buffer's `ReplayBuffer.statistics()`, as Python numbers."""
        return [
            {
                name: value.numpy().tolist()
                for name, value in buffer.statistics().items()
            }
            for buffer in self.buffers or []
        ]

    def _check_trained(self, trained):
        if list(trained) != list(range(len(self.blocks))):
            raise UserError(
                "Asynchronous DGL trains every block at its own pace, but "
                f"trained_blocks={list(trained)}: it cannot be combined "
                "with a sequential or multi-lap schedule."
            )

    def _ensure_buffers(self, x, y, sample_weight):
        """Makes the K - 1 buffers from a first batch's shapes (eagerly)."""
        if self.buffers is not None:
            return
        self._weighted = sample_weight is not None
        settings = self.settings
        hand_over, buffers = HandOver(x), []
        for block in self.blocks[:-1]:
            hand_over = self._forward[block.index](hand_over)
            consumer = self.blocks[block.index + 1]
            buffers.append(
                ReplayBuffer(
                    settings.buffer_size,
                    _spec(_stored(hand_over)),
                    _spec(y),
                    None if sample_weight is None else _spec(sample_weight),
                    sampling=settings.sampling,
                    max_reuse=settings.max_reuse,
                    device=consumer.device,
                    seed=settings.seed + consumer.index,
                    name=f"replay_buffer_{block.index}",
                )
            )
        self.buffers = buffers


def _learning_rate(optimizer):
    return float(keras.ops.convert_to_numpy(optimizer.learning_rate))


def _spec(structure):
    return tf.nest.map_structure(
        lambda t: tf.TensorSpec(t.shape, t.dtype), structure
    )


def _stored(hand_over):
    """What a buffer holds of a hand-over: its tensors (no None field)."""
    return hand_over.features if hand_over.labels is None else hand_over


def _restored(stored):
    """The hand-over a buffer's sample stands for."""
    return stored if isinstance(stored, HandOver) else HandOver(stored)
