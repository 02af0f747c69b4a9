"""TransportObjective: a block objective plus the block's transport term.

Karkar et al.'s regularizer (methods.md §4) is a block objective like any
other: it wraps the objective of the block's output (a head's
cross-entropy, PredSim's loss) and adds the kinetic-energy term of the
block's forward pass. Blocks, steps and executors do not know about it;
`GreedyModel(..., transport=...)` gives each block one at `compile`.
"""

from collections.abc import Sequence

import keras

from localgrad.block_transport import BlockTransport
from localgrad.blocks.block import Block
from localgrad.blocks.hand_over import HandOver
from localgrad.blocks.objective import LocalLoss, Objective
from localgrad.errors import UserError
from localgrad.transport import Transport


class TransportObjective(Objective):
    """`objective`'s loss plus the weighted transport term of the block.

    `run` runs the block's units recording their displacement
    (`BlockTransport.run`: the residual branches of residual units, or
    T(x) − x), scores the output with the wrapped objective and returns
    `loss + term / (2τ_k)` (fixed τ) or `loss + term / λ_k` (Uzawa).
    The `LocalLoss` keeps `terms["base_loss"]`, the wrapped loss, and
    `terms["transport_term"]`; after each training step `update_state`
    raises λ_k from the base loss every `uzawa_every` steps, and tracks
    the term (log `block_k_transport`, and `block_k_uzawa_lambda`).

    Example:

    ```python
    transport = localgrad.Transport(tau=1.0).for_block(0, num_blocks=4)
    objective = TransportObjective(
        HeadObjective(head, "sparse_categorical_crossentropy"), transport)
    outputs, local = objective.run(block.units, HandOver(x), y,
                                   training=True)
    local.loss  # cross-entropy + term / 2
    ```

    Args:
        objective: The objective of the block's output.
        transport: The block's `BlockTransport` (its weight, λ_k, term
            tracker).
    """

    def __init__(self, objective: Objective, transport: BlockTransport):
        self.objective = objective
        self.transport = transport

    @property
    def layers(self) -> list:
        return self.objective.layers

    @property
    def metrics(self) -> list:
        return self.objective.metrics + [self.transport.term_tracker]

    def __call__(
        self, outputs: HandOver, y, sample_weight=None, training=False
    ) -> LocalLoss:
        """The wrapped objective's loss (the term needs the pass: `run`)."""
        return self.objective(outputs, y, sample_weight, training)

    def run(
        self,
        units: Sequence[keras.layers.Layer],
        inputs: HandOver,
        y,
        sample_weight=None,
        training=False,
    ) -> tuple[HandOver, LocalLoss]:
        features, term = self.transport.run(units, inputs.features, training)
        outputs = inputs._replace(features=features)
        local = self.objective(outputs, y, sample_weight, training)
        terms = dict(local.terms or {}, base_loss=local.loss)
        terms["transport_term"] = term
        return outputs, local._replace(
            loss=self.transport.regularized_loss(local.loss, term),
            terms=terms,
        )

    def update_state(self, local: LocalLoss, training: bool) -> None:
        """Tracks the term; after a training step, the Uzawa update."""
        self.objective.update_state(local, training)
        if training:
            self.transport.update_multiplier(local.terms["base_loss"])
        self.transport.update_state(local.terms["transport_term"])

    def logs(self) -> dict:
        return {**self.objective.logs(), **self.transport.logs()}


def block_transports(
    transport: Transport | None, network, blocks: Sequence[Block]
) -> list[BlockTransport]:
    """Each block's `BlockTransport`, made on the block's device.

    Example:

    ```python
    block_transports(localgrad.Transport(uzawa_step=1.0), net, model.blocks)
    ```

    Args:
        transport: The model's `localgrad.Transport`, or None.
        network: The `localgrad.Network` the blocks cut.
        blocks: The model's blocks.

    Returns:
        One `BlockTransport` per block; `[]` without transport.

    Raises:
        ValueError: for a `transport` that is not a `Transport`, or a block
            whose term is undefined (`Transport.check_blocks`).
    """
    if transport is None:
        return []
    if not isinstance(transport, Transport):
        raise UserError(
            "transport must be a localgrad.Transport, e.g. transport="
            f"localgrad.Transport(tau=1.0); got {transport!r}."
        )
    transport.check_blocks(network, [block.unit_range for block in blocks])
    transports = []
    for block in blocks:
        with block.device_scope():
            transports.append(transport.for_block(block.index, len(blocks)))
    return transports
