"""AsyncOrder: which block steps at each tick of simulated asynchrony."""

from collections.abc import Mapping

import numpy as np

from localgrad.asynchrony.slowdown import validate_slowdown
from localgrad.errors import UserError

DRAWS = ("random", "round_robin")


class AsyncOrder:
    """The block order of simulated asynchronous DGL, deterministic by seed.

    As in the released code of DGL §4 (Belilovsky et al., ICML 2020): a
    warm-up first steps every block in turn, `warmup_repeats` times each
    (0, 0, 1, 1, ..., K-1, K-1), so that every buffer holds a batch; then
    each tick draws one block at random, with weight 1 for every block and
    1 / s for a block slowed by a factor s. Call `restart_warmup` to run
    the warm-up again (the released code does at every learning-rate drop).
    With `draw="round_robin"` the ticks after the warm-up are 0, 1, ...,
    K-1, 0, 1, ...: with buffers of one batch, the synchronous schedule.

    The order is plain Python and numpy, drawn by the executor's loop
    between block steps; it is not meant for `tf.function`. Its state (for
    checkpoints) is `get_state()`.

    Example:

    ```python
    order = localgrad.AsyncOrder(num_blocks=3, slowdown={2: 1 / 0.9})
    order.take(6)   # [0, 0, 1, 1, 2, 2]: the warm-up
    block = next(order)  # then random: block 2 is drawn with weight 0.9
    ```

    Args:
        num_blocks: The number of blocks K.
        slowdown: `{block: factor}`: the slowed blocks and how many times
            slower each runs (see `localgrad.asynchrony.validate_slowdown`).
        seed: The seed of the random order.
        warmup_repeats: How many consecutive ticks each block gets in the
            warm-up (0: no warm-up).
        draw: `"random"` (the released code) or `"round_robin"`.

    Raises:
        ValueError: for K < 1, a bad slowdown (a block that does not exist,
            a factor <= 0), warmup_repeats < 0, an unknown draw, or a
            slowdown with the round-robin draw.
    """

    def __init__(
        self,
        num_blocks: int,
        slowdown: Mapping[int, float] | None = None,
        seed: int = 0,
        warmup_repeats: int = 2,
        draw: str = "random",
    ):
        if isinstance(num_blocks, bool) or not isinstance(num_blocks, int):
            raise UserError(f"num_blocks must be an int; got {num_blocks!r}.")
        if num_blocks < 1:
            raise UserError(f"num_blocks must be >= 1; got {num_blocks}.")
        if (
            isinstance(warmup_repeats, bool)
            or not isinstance(warmup_repeats, int)
            or warmup_repeats < 0
        ):
            raise UserError(
                "warmup_repeats must be an integer >= 0 (ticks per block in "
                f"the warm-up); got {warmup_repeats!r}."
            )
        if draw not in DRAWS:
            raise UserError(f"Unknown draw {draw!r}; use one of {DRAWS}.")
        self.num_blocks = num_blocks
        self.slowdown = validate_slowdown(slowdown, num_blocks)
        if draw == "round_robin" and self.slowdown:
            raise UserError(
                "The round-robin draw steps every block equally often; "
                f"slowdown={self.slowdown} needs draw='random'."
            )
        self.draw = draw
        self.seed = seed
        self.warmup_repeats = warmup_repeats
        weights = np.ones(num_blocks)
        for block, factor in self.slowdown.items():
            weights[block] = 1.0 / factor
        self.probabilities = weights / weights.sum()
        self._cumulative = np.cumsum(self.probabilities)
        self._rng = np.random.default_rng(seed)
        self._warmup_position = 0
        self._drawn = 0
        self.ticks = 0

    @property
    def warmup(self) -> list:
        """The block order of one warm-up."""
        return [
            block
            for block in range(self.num_blocks)
            for _ in range(self.warmup_repeats)
        ]

    @property
    def in_warmup(self) -> bool:
        """Whether the next tick is a warm-up tick."""
        return self._warmup_position < len(self.warmup)

    def restart_warmup(self) -> None:
        """Makes the next ticks a new warm-up (0, 0, 1, 1, ...)."""
        self._warmup_position = 0

    def __iter__(self) -> "AsyncOrder":
        return self

    def __next__(self) -> int:
        """The block that steps at the next tick."""
        self.ticks += 1
        if self.in_warmup:
            self._warmup_position += 1
            return self.warmup[self._warmup_position - 1]
        self._drawn += 1
        if self.draw == "round_robin":
            return (self._drawn - 1) % self.num_blocks
        drawn = np.searchsorted(self._cumulative, self._rng.random(), "right")
        return int(min(drawn, self.num_blocks - 1))

    def take(self, ticks: int) -> list:
        """The blocks of the next `ticks` ticks."""
        return [next(self) for _ in range(ticks)]

    def get_state(self) -> dict:
        """The position in the order, JSON-serialisable, for checkpoints.

        Example:

        ```python
        state = order.get_state()
        resumed = localgrad.AsyncOrder(6, {3: 1.11}, seed=0)
        resumed.set_state(state)  # continues exactly where `order` is
        ```
        """
        return {
            "ticks": self.ticks,
            "warmup_position": self._warmup_position,
            "drawn": self._drawn,
            "generator": self._rng.bit_generator.state,
        }

    def set_state(self, state: Mapping) -> None:
        """Continues from a `get_state()` of an order with the same blocks.

        Raises:
            ValueError: if the state is not one of `get_state`'s.
        """
        if set(state) != set(self.get_state()):
            raise UserError(
                f"Not an AsyncOrder state (keys {sorted(self.get_state())}); "
                f"got keys {sorted(state)}."
            )
        self.ticks = int(state["ticks"])
        self._warmup_position = int(state["warmup_position"])
        self._drawn = int(state["drawn"])
        self._rng.bit_generator.state = dict(state["generator"])
