"""Block: a run of units trained together from one local objective."""

import contextlib
from collections.abc import Callable, Sequence

import keras
import tensorflow as tf

from localgrad import boundaries as boundaries_lib
from localgrad.blocks.hand_over import HandOver
from localgrad.blocks.objective import LocalLoss, Objective, run_units
from localgrad.blocks.trackers import BlockTrackers


class Block:
    """One gradient-isolated block: the one place that knows block k.

    A block holds its units (a slice of the network), its head (the layer
    whose logits are the block's prediction: an auxiliary head, or the
    network's classifier for the last block), its device, and, once the
    model is compiled, its objective, its optimizer and its trackers.

    Example:

    ```python
    block = model.blocks[1]
    block.unit_range, block.device      # (3, 7), "/device:CPU:1"
    hand_over = block.call_units(HandOver(x), training=False)
    outputs, local = block.local_loss(HandOver(x), y)
    block.update_state(local, y)  # trackers (and objective) after a batch
    block.logs()  # {"block_1_loss": ..., "block_1_accuracy": ...}
    ```

    Args:
        index: The block's index k.
        units: The block's units, in order.
        unit_range: `(start, end)`: the units' indices in the network.
        head: The layer giving the block's logits.
        device: Where the block's variables and steps live (None: the
            default placement).
    """

    def __init__(
        self,
        index: int,
        units: Sequence[keras.layers.Layer],
        unit_range: tuple[int, int],
        head: keras.layers.Layer,
        device: str | None = None,
    ):
        self.index = index
        self.units = list(units)
        self.unit_range = tuple(unit_range)
        self.head = head
        self.device = device
        self.objective = None
        self.optimizer = None
        self.trackers = None

    def compile(
        self,
        objective: Objective,
        optimizer: keras.optimizers.Optimizer,
        trackers: BlockTrackers,
    ) -> None:
        """Gives the block what training needs; builds the optimizer here.

        The optimizer's slots are made on the block's device.
        """
        self.objective = objective
        self.optimizer = optimizer
        self.trackers = trackers
        with self.device_scope():
            optimizer.build(self.trainable_variables)

    @property
    def auxiliary_layers(self) -> list:
        """The layers trained with the units: the objective's (or head)."""
        if self.objective is None:
            return [self.head]
        return list(self.objective.layers)

    @property
    def trainable_variables(self) -> list:
        """The trainable variables of the units and auxiliary layers."""
        layers = self.units + self.auxiliary_layers
        return [v for layer in layers for v in layer.trainable_variables]

    @property
    def variables(self) -> list:
        """Every variable of the units and auxiliary layers."""
        layers = self.units + self.auxiliary_layers
        return [v for layer in layers for v in layer.variables]

    def device_scope(self):
        """A context placing what is created or run in it on the device."""
        if self.device is None:
            return contextlib.nullcontext()
        return tf.device(self.device)

    def call_units(self, inputs: HandOver, training=False) -> HandOver:
        """Runs the block's units on a hand-over."""
        return run_units(self.units, inputs, training)

    def local_loss(
        self, inputs: HandOver, y, sample_weight=None, training=False
    ) -> tuple[HandOver, LocalLoss]:
        """Runs the block under its objective (plus the units' own losses).

        The objective runs the units (`Objective.run`): most score the
        output alone; a transport objective also measures how far the
        units move their input.

        Returns:
            `(outputs, local)`: the block's output hand-over (not detached;
            the objective's `hand_over` when it gives one) and its
            `LocalLoss`.
        """
        outputs, local = self.objective.run(
            self.units, inputs, y, sample_weight, training
        )
        loss = local.loss
        for unit in self.units:
            loss += sum(unit.losses, 0.0)
        if local.hand_over is not None:
            outputs = local.hand_over
        return outputs, local._replace(loss=loss)

    def update_state(
        self, local: LocalLoss, y, sample_weight=None, training=False
    ) -> None:
        """Adds one batch to the trackers and the objective's state.

        Called after the block's optimizer step when training (the
        objective may then adapt itself: the Uzawa multiplier), after the
        forward pass when evaluating.
        """
        self.trackers.update(local, y, sample_weight)
        self.objective.update_state(local, training)

    def logs(self) -> dict:
        """`{name: value}` of the block's trackers and its objective."""
        return {**self.trackers.results(), **self.objective.logs()}


def build_blocks(
    network,
    boundaries: Sequence[int],
    heads: Sequence[keras.layers.Layer],
    devices: Sequence[str | None],
) -> list[Block]:
    """The K blocks of a network cut at `boundaries`.

    Block k < K - 1 ends in `heads[k]`; the last block ends in the
    network's own classifier (the one place this rule is written).

    Example:

    ```python
    blocks = build_blocks(net, [2, 5], heads, [None, None, None])
    ```

    Args:
        network: The `localgrad.Network`.
        boundaries: Validated boundaries (K - 1 of them).
        heads: The K - 1 auxiliary heads.
        devices: One device (or None) per block.
    """
    ranges = boundaries_lib.block_ranges(boundaries, network.num_units)
    last_heads = list(heads) + [network.classifier]
    return [
        Block(k, network.units[start:end], (start, end), head, device)
        for k, ((start, end), head, device) in enumerate(
            zip(ranges, last_heads, devices)
        )
    ]


def run_chain(
    blocks: Sequence[Block],
    inputs: HandOver,
    step: Callable[[Block, HandOver], HandOver],
) -> HandOver:
    """Runs `step` over blocks in order, each on the last one's hand-over.

    The one loop that runs blocks forward: training (per-block steps),
    evaluation and inference pass their own `step`.

    Example:

    ```python
    run_chain(model.blocks, HandOver(x),
              lambda block, h: block.call_units(h, training=False))
    ```

    Returns:
        The last block's hand-over.
    """
    hand_over = inputs
    for block in blocks:
        hand_over = step(block, hand_over)
    return hand_over
