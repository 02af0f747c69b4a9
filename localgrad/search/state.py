"""The supernet's training state as plain tensors (or numpy arrays)."""

from typing import NamedTuple

import numpy as np
from keras import ops
from keras.backend import standardize_dtype


class SupernetState(NamedTuple):
    """Everything a relaxed training step reads and writes.

    The lists follow the order of the supernet's `trainable_variables` and
    `non_trainable_variables`; `velocities` holds one momentum buffer per
    trainable weight. Tensors (inside the compiled steps) or numpy arrays
    (in the weight memory and checkpoints).

    Example:

    ```python
    state = SupernetState.from_layer(supernet)  # current weights, v = 0
    state.num_weights  # len(supernet.trainable_variables)
    ```
    """

    trainable: tuple
    non_trainable: tuple
    velocities: tuple

    @classmethod
    def from_layer(cls, layer) -> "SupernetState":
        """The layer's current variable values, with zero momentum."""
        trainable = tuple(
            ops.convert_to_tensor(v.numpy()) for v in layer.trainable_variables
        )
        return cls(
            trainable=trainable,
            non_trainable=tuple(
                ops.convert_to_tensor(v.numpy())
                for v in layer.non_trainable_variables
            ),
            velocities=tuple(ops.zeros_like(w) for w in trainable),
        )

    @property
    def num_weights(self) -> int:
        """The number of trainable weight tensors."""
        return len(self.trainable)

    def numpy(self) -> "SupernetState":
        """The same state with every tensor as a numpy array."""
        return SupernetState(
            *(tuple(np.asarray(t) for t in part) for part in self)
        )

    def tensors(self) -> "SupernetState":
        """The same state with every array as a tensor."""
        return SupernetState(
            *(tuple(ops.convert_to_tensor(t) for t in part) for part in self)
        )

    def same_structure(self, other: "SupernetState") -> bool:
        """Whether `other` has the same number, shapes and dtypes."""
        for mine, theirs in zip(self, other):
            if len(mine) != len(theirs):
                return False
            for a, b in zip(mine, theirs):
                if tuple(a.shape) != tuple(b.shape):
                    return False
                if standardize_dtype(a.dtype) != standardize_dtype(b.dtype):
                    return False
        return True
