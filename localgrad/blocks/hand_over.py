"""HandOver: what block k passes on to block k + 1."""

from typing import Any, NamedTuple

import tensorflow as tf


class HandOver(NamedTuple):
    """The tensors one block hands to the next, detached from its graph.

    A block hands over its output features and, for Associated Learning,
    its label-side tensor t_k (None for other methods, and before the
    first block); executors carry every field along unchanged: they map
    over the fields with `tf.nest`, they never read them.

    Example:

    ```python
    hand_over = HandOver(features=x)
    hand_over = block.call_units(hand_over, training=False)
    hand_over.detached().features
    ```

    Attributes:
        features: The block's output features (the next block's input).
        labels: The label-side stream (Associated Learning's t_k), or None.
    """

    features: Any
    labels: Any = None

    def detached(self) -> "HandOver":
        """The same hand-over with no gradient path to the block behind."""
        return tf.nest.map_structure(
            lambda t: None if t is None else tf.stop_gradient(t), self
        )
