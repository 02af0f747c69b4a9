"""HandOver: what block k passes on to block k + 1."""

from typing import Any, NamedTuple

import tensorflow as tf


class HandOver(NamedTuple):
    """The tensors one block hands to the next, detached from its graph.

    Today a block hands over its output features; a method that needs more
    (Associated Learning's label-side stream) adds a field, and every
    executor carries it along unchanged: executors map over the fields
    with `tf.nest`, they never read them.

    Example:

    ```python
    hand_over = HandOver(features=x)
    hand_over = block.call_units(hand_over, training=False)
    hand_over.detached().features
    ```

    Attributes:
        features: The block's output features (the next block's input).
    """

    features: Any

    def detached(self) -> "HandOver":
        """The same hand-over with no gradient path to the block behind."""
        return tf.nest.map_structure(tf.stop_gradient, self)
