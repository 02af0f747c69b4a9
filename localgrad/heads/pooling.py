"""Adaptive average pooling to a fixed output size."""

from collections.abc import Sequence

import keras
import numpy as np
from keras import ops

from localgrad.errors import UserError


def adaptive_pool_matrix(input_size: int, output_size: int) -> np.ndarray:
    """The `(output_size, input_size)` matrix of adaptive average pooling.

    Output cell i averages the input cells from `floor(i * s / o)` up to (not
    including) `ceil((i + 1) * s / o)`, for input size s and output size o.
    The bins cover the input, and overlap when o does not divide s (7 -> 2
    averages cells 0..3 and 3..6). When o divides s this is ordinary average
    pooling with window and stride s / o.

    Example:

    ```python
    adaptive_pool_matrix(3, 2)
    # [[0.5, 0.5, 0. ],
    #  [0. , 0.5, 0.5]]
    ```

    Args:
        input_size: The input size s along one axis.
        output_size: The output size o along that axis, `1 <= o <= s`.

    Returns:
        A float32 matrix whose rows sum to one.

    Raises:
        ValueError: if `output_size` is not in `1..input_size`.
    """
    if not 1 <= output_size <= input_size:
        raise UserError(
            f"Adaptive average pooling can only shrink: output size "
            f"{output_size} must be in 1..{input_size} (the input size)."
        )
    matrix = np.zeros((output_size, input_size), np.float32)
    for index in range(output_size):
        start = (index * input_size) // output_size
        end = -((-(index + 1) * input_size) // output_size)
        matrix[index, start:end] = 1.0 / (end - start)
    return matrix


@keras.saving.register_keras_serializable(package="localgrad")
class AdaptiveAveragePooling2D(keras.layers.Layer):
    """Average-pools a `(batch, H, W, C)` map to a fixed `(h, w)` size.

    Works for any input size not smaller than the output size, including
    sizes the output does not divide (see `adaptive_pool_matrix`).

    Example:

    ```python
    pool = AdaptiveAveragePooling2D((2, 2))
    pool(np.ones((4, 7, 7, 3))).shape  # (4, 2, 2, 3)
    ```

    Args:
        output_size: An int or a pair `(h, w)`.
        **kwargs: Passed to `keras.layers.Layer`.

    Raises:
        ValueError: if an output size is not a positive int, or (when called)
            the input is smaller than the output.
    """

    def __init__(self, output_size: int | Sequence[int], **kwargs):
        super().__init__(**kwargs)
        if isinstance(output_size, int):
            output_size = (output_size, output_size)
        output_size = tuple(output_size)
        if len(output_size) != 2 or any(
            not isinstance(size, int) or size < 1 for size in output_size
        ):
            raise UserError(
                "AdaptiveAveragePooling2D needs output_size as a positive int "
                f"or a pair of them; got {output_size!r}."
            )
        self.output_size = output_size

    def call(self, inputs):
        height, width = inputs.shape[1], inputs.shape[2]
        rows = ops.cast(
            adaptive_pool_matrix(height, self.output_size[0]), inputs.dtype
        )
        cols = ops.cast(
            adaptive_pool_matrix(width, self.output_size[1]), inputs.dtype
        )
        # Two matmuls over the last axis (not einsum), which TFLite converts
        # for a dynamic batch size.
        columns_last = ops.transpose(inputs, (0, 2, 3, 1))  # (b, w, c, h)
        pooled = ops.matmul(columns_last, ops.transpose(rows))  # (b, w, c, i)
        rows_last = ops.transpose(pooled, (0, 3, 2, 1))  # (b, i, c, w)
        pooled = ops.matmul(rows_last, ops.transpose(cols))  # (b, i, c, j)
        return ops.transpose(pooled, (0, 1, 3, 2))  # (b, i, j, c)

    def compute_output_shape(self, input_shape):
        return (input_shape[0],) + self.output_size + (input_shape[3],)

    def get_config(self):
        config = super().get_config()
        config.update(output_size=list(self.output_size))
        return config
