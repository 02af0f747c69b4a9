"""Transport regularization (Karkar et al., NeurIPS 2023): the settings.

Each block's local loss gets a kinetic-energy term (methods.md §4): with a
fixed step τ the block minimises `loss + term / (2τ)`; with the adaptive
(Uzawa) multiplier it minimises `loss + term / λ_k` and raises λ_k by
`uzawa_step · loss` every `uzawa_every` of its steps. The term itself is
`localgrad.transport_term.run_block_with_transport`'s.

`Transport` is the user's choice of settings, validated at construction.
`Transport.for_block(k, K)` makes block k's
`localgrad.block_transport.BlockTransport`, the Keras layer that owns λ_k
and applies the settings to one block.
"""

import math
from collections.abc import Sequence

import keras

from localgrad.block_transport import BlockTransport
from localgrad.errors import UserError
from localgrad.transport_term import TransportFn, transport_rule

UZAWA_INITS = ("increasing", "decreasing")
DEFAULT_UZAWA_EVERY = 50  # Karkar et al.'s published setting.


@keras.saving.register_keras_serializable(package="localgrad")
class Transport:
    """The transport regularization of a `GreedyModel`'s blocks.

    Give exactly one of `tau` (fixed) or `uzawa_step` (adaptive):

    - Fixed: block k adds `term / (2 τ_k)`. `τ_k = tau`, or `tau[k]` for a
      list of K values; with `varying=True` the first ⌊K/2⌋ blocks use
      τ/2. `tau=math.inf` adds no term at all.
    - Adaptive (Uzawa): block k adds `term / λ_k`. λ_k starts at
      `uzawa_lambda0 · (k + 1)^uzawa_power` ("increasing") or
      `uzawa_lambda0 · (K − k)^uzawa_power` ("decreasing"); after every
      `uzawa_every`-th training step of the block,
      `λ_k ← λ_k + uzawa_step · local loss` (the local loss of that step's
      batch, without the term; the cross-entropy for a classification
      head). The step itself uses λ_k from before the update.

    The term of a block is defined in `localgrad.transport_term`: the sum
    of mean(g²) over residual units, or mean((T(x) − x)²) for a block that
    keeps its input's shape, or `transport_fn(inputs, outputs)` for blocks
    that are not all residual.

    Example:

    ```python
    localgrad.Transport(tau=1.0, varying=True).block_tau(0, 8)  # 0.5
    adaptive = localgrad.Transport(uzawa_step=1.0, uzawa_every=50)
    adaptive.initial_multiplier(2, 8)  # 3.0
    ```

    Args:
        tau: τ > 0 (`math.inf` allowed), or one τ per block.
        varying: Halve τ for the first ⌊K/2⌋ blocks (fixed τ only).
        uzawa_step: The Uzawa step size (> 0) of the adaptive multiplier.
        uzawa_every: Steps between two Uzawa updates (default 50).
        uzawa_init: `"increasing"` or `"decreasing"` initial λ_k.
        uzawa_lambda0: λ_0 > 0.
        uzawa_power: p ≥ 0.
        transport_fn: `fn(inputs, outputs) -> scalar`, the term of blocks
            that are not all residual (instead of mean((T(x) − x)²)).

    Raises:
        ValueError: for neither or both of `tau` and `uzawa_step`, τ ≤ 0,
            `varying` or a τ list with Uzawa, a bad Uzawa setting, or a
            `transport_fn` that is not callable.
    """

    def __init__(
        self,
        tau: float | Sequence[float] | None = None,
        varying: bool = False,
        uzawa_step: float | None = None,
        uzawa_every: int | None = None,
        uzawa_init: str = "increasing",
        uzawa_lambda0: float = 1.0,
        uzawa_power: float = 1.0,
        transport_fn: TransportFn | None = None,
    ):
        if isinstance(transport_fn, dict):
            transport_fn = keras.saving.deserialize_keras_object(transport_fn)
        if (tau is None) == (uzawa_step is None):
            raise UserError(
                "Give exactly one of tau= (a fixed step, e.g. "
                "Transport(tau=1.0)) or uzawa_step= (the adaptive "
                "multiplier, e.g. Transport(uzawa_step=1.0, "
                f"uzawa_every=50)); got tau={tau!r}, uzawa_step="
                f"{uzawa_step!r}. Use tau=math.inf for no term."
            )
        if tau is not None:
            tau = _check_taus(tau, varying)
            if uzawa_every is not None:
                raise UserError(
                    f"uzawa_every={uzawa_every} is for the adaptive "
                    "multiplier (uzawa_step=); remove it or drop tau=."
                )
        else:
            if varying:
                raise UserError(
                    "varying=True halves a fixed tau; the adaptive "
                    "multiplier (uzawa_step=) sets each block's weight "
                    "with uzawa_init= instead."
                )
            _check_uzawa(
                uzawa_step, uzawa_every, uzawa_init, uzawa_lambda0, uzawa_power
            )
        if transport_fn is not None and not callable(transport_fn):
            raise UserError(
                "transport_fn must be a function fn(inputs, outputs) -> "
                f"scalar; got {transport_fn!r}."
            )
        self.tau = tau
        self.varying = bool(varying)
        self.uzawa_step = None if uzawa_step is None else float(uzawa_step)
        self.uzawa_every = (
            None if uzawa_step is None else uzawa_every or DEFAULT_UZAWA_EVERY
        )
        self.uzawa_init = uzawa_init
        self.uzawa_lambda0 = float(uzawa_lambda0)
        self.uzawa_power = float(uzawa_power)
        self.transport_fn = transport_fn

    @property
    def adaptive(self) -> bool:
        """Whether the weight is the Uzawa multiplier (not a fixed τ)."""
        return self.uzawa_step is not None

    def block_tau(self, block: int, num_blocks: int) -> float:
        """τ_k of block `block` of `num_blocks` (fixed τ only).

        Raises:
            ValueError: with Uzawa, a block outside 0..K-1, or a τ list
                whose length is not K.
        """
        _check_block(block, num_blocks)
        if self.adaptive:
            raise UserError(
                "This Transport uses the adaptive multiplier (uzawa_step=); "
                "it has no fixed tau. Read BlockTransport.multiplier."
            )
        if isinstance(self.tau, tuple):
            if len(self.tau) != num_blocks:
                raise UserError(
                    f"tau holds {len(self.tau)} values but the model has "
                    f"{num_blocks} blocks: give one tau per block."
                )
            return self.tau[block]
        if self.varying and block < num_blocks // 2:
            return self.tau / 2
        return self.tau

    def initial_multiplier(self, block: int, num_blocks: int) -> float:
        """λ_k at the start of training (Uzawa only).

        Raises:
            ValueError: for a fixed τ or a block outside 0..K-1.
        """
        _check_block(block, num_blocks)
        if not self.adaptive:
            raise UserError(
                "initial_multiplier is for the adaptive multiplier "
                "(uzawa_step=); this Transport has a fixed tau."
            )
        rank = (
            block + 1 if self.uzawa_init == "increasing" else num_blocks - block
        )
        return self.uzawa_lambda0 * rank**self.uzawa_power

    def for_block(self, block: int, num_blocks: int) -> BlockTransport:
        """Block `block`'s `BlockTransport` (its weight, λ_k and logs)."""
        return BlockTransport(self, block, num_blocks)

    def for_blocks(
        self, network, block_ranges: Sequence
    ) -> list[BlockTransport]:
        """Every block's `BlockTransport`, after `check_blocks`.

        The one call a model makes at construction: it fails early, naming
        the block, if a block's term is undefined.

        Example:

        ```python
        net = localgrad.models.build("resnet18", (28, 28, 1), 10, 0.25)
        blocks = Transport(uzawa_step=1.0).for_blocks(net, [(0, 4), (4, 8)])
        [float(b.multiplier.value) for b in blocks]  # [1.0, 2.0]
        ```

        Raises:
            ValueError: as `check_blocks`.
        """
        self.check_blocks(network, block_ranges)
        num_blocks = len(block_ranges)
        return [self.for_block(k, num_blocks) for k in range(num_blocks)]

    def check_blocks(self, network, block_ranges: Sequence) -> list[str]:
        """The transport rule of every block of `network`, checked early.

        Example:

        ```python
        net = localgrad.models.build("resnet18", (28, 28, 1), 10, 0.25)
        Transport(tau=1.0).check_blocks(net, [(0, 4), (4, 8)])
        # ["residual", "residual"]
        ```

        Args:
            network: A `localgrad.Network`.
            block_ranges: `(start, end)` unit ranges of the K blocks.

        Returns:
            One of `localgrad.transport_term.RULES` per block, or `"none"`
            for a block with τ = ∞.

        Raises:
            ValueError: naming the first block whose term is undefined.
        """
        shapes = [network.example_shape] + list(network.unit_output_shapes)
        rules = []
        for block, (start, end) in enumerate(block_ranges):
            if not self.adaptive and math.isinf(
                self.block_tau(block, len(block_ranges))
            ):
                rules.append("none")
                continue
            rules.append(
                transport_rule(
                    network.units[start:end],
                    shapes[start],
                    shapes[end],
                    self.transport_fn,
                    f"block {block} (units {start}..{end - 1})",
                )
            )
        return rules

    def get_config(self) -> dict:
        fn = self.transport_fn
        return {
            "tau": list(self.tau) if isinstance(self.tau, tuple) else self.tau,
            "varying": self.varying,
            "uzawa_step": self.uzawa_step,
            "uzawa_every": self.uzawa_every,
            "uzawa_init": self.uzawa_init,
            "uzawa_lambda0": self.uzawa_lambda0,
            "uzawa_power": self.uzawa_power,
            "transport_fn": None
            if fn is None
            else keras.saving.serialize_keras_object(fn),
        }

    @classmethod
    def from_config(cls, config: dict) -> "Transport":
        return cls(**config)

    def __repr__(self):
        fields = ", ".join(
            f"{key}={value!r}"
            for key, value in self.get_config().items()
            if value is not None
        )
        return f"Transport({fields})"


def _check_block(block, num_blocks):
    if not 0 <= block < num_blocks:
        raise UserError(
            f"block={block} is not a block of a model with {num_blocks} "
            f"blocks (0..{num_blocks - 1})."
        )


def _check_taus(tau, varying):
    values = list(tau) if isinstance(tau, (list, tuple)) else [tau]
    for value in values:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise UserError(f"tau must be a number or a list; got {tau!r}.")
        if math.isnan(value) or value <= 0:
            raise UserError(
                f"tau must be > 0 (math.inf for no term); got {value!r}. "
                "A smaller tau weighs the term more: term / (2 tau)."
            )
    if isinstance(tau, (list, tuple)):
        if varying:
            raise UserError(
                "varying=True halves one tau for the first half of the "
                "blocks; with a list of per-block taus, halve them yourself."
            )
        if not values:
            raise UserError("tau=[] holds no values: give one per block.")
        return tuple(float(value) for value in values)
    return float(tau)


def _check_uzawa(step, every, init, lambda0, power):
    if (
        isinstance(step, bool)
        or not isinstance(step, (int, float))
        or not (step > 0 and math.isfinite(step))
    ):
        raise UserError(f"uzawa_step must be a number > 0; got {step!r}.")
    if every is not None and (
        isinstance(every, bool) or not isinstance(every, int) or every < 1
    ):
        raise UserError(
            f"uzawa_every must be a positive integer (steps); got {every!r}."
        )
    if init not in UZAWA_INITS:
        raise UserError(
            f"Unknown uzawa_init {init!r}; use one of {UZAWA_INITS}."
        )
    if not (lambda0 > 0 and math.isfinite(lambda0)):
        raise UserError(f"uzawa_lambda0 must be > 0; got {lambda0!r}.")
    if not (power >= 0 and math.isfinite(power)):
        raise UserError(f"uzawa_power must be >= 0; got {power!r}.")
