"""The base class of auxiliary heads and its input-shape checks."""

from collections.abc import Sequence

import keras

from localgrad.errors import UserError
from localgrad.models.units import BN_EPSILON, BN_MOMENTUM


@keras.saving.register_keras_serializable(package="localgrad")
class Head(keras.layers.Layer):
    """A layer that maps a block's output features to class logits.

    A head is constructed for one feature shape and builds itself at once, so
    a head made by `localgrad.heads.build` or by `from_config` is ready to
    use and to receive weights. Subclasses create their sublayers in
    `__init__` after calling `super().__init__`, then call
    `self.build((None,) + self.feature_shape)`.

    Args:
        input_shape: Shape of one example's features, without the batch
            dimension: `(H, W, C)` for a feature map, `(C,)` for flat features.
        num_classes: Number of classes n; the head outputs `(batch, n)`.
        kind: The head's registry name for error messages, when it is not
            the class's `head_name` (e.g. "light3").
        bn_momentum: Momentum of the head's BatchNormalization layers'
            moving statistics; the units' 0.9 by default (PyTorch's 0.1,
            as in the authors' code; Keras' own default 0.99 lags behind
            weights that move fast in greedy training).
        **kwargs: Passed to `keras.layers.Layer` (e.g. `name`, `dtype`).

    Raises:
        ValueError: if the shape has a non-positive size, `num_classes < 1`
            or `bn_momentum` is outside [0, 1).
    """

    head_name = "head"

    def __init__(
        self,
        input_shape: Sequence[int],
        num_classes: int,
        kind: str | None = None,
        bn_momentum: float = BN_MOMENTUM,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.head_name = kind or type(self).head_name
        if not 0.0 <= bn_momentum < 1.0:
            raise UserError(
                f"Head '{self.head_name}' needs bn_momentum in [0, 1) (the "
                f"weight of the old moving statistics, e.g. {BN_MOMENTUM}); "
                f"got {bn_momentum!r}."
            )
        self.bn_momentum = float(bn_momentum)
        shape = tuple(input_shape)
        if not shape or any(
            not isinstance(size, int) or size < 1 for size in shape
        ):
            raise UserError(
                f"Head '{self.head_name}' needs a feature shape of positive "
                f"integers without the batch dimension, e.g. (8, 8, 16) or "
                f"(64,); got {shape}."
            )
        if not isinstance(num_classes, int) or num_classes < 1:
            raise UserError(
                f"Head '{self.head_name}' needs num_classes >= 1 (an int); "
                f"got {num_classes!r}."
            )
        self.feature_shape = shape
        self.num_classes = num_classes

    def build(self, input_shape):
        """Builds every sublayer by running `call` on a symbolic tensor."""
        self.call(keras.KerasTensor(input_shape, dtype=self.compute_dtype))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.num_classes)

    def get_config(self):
        config = super().get_config()
        config.update(
            input_shape=list(self.feature_shape),
            num_classes=self.num_classes,
            bn_momentum=self.bn_momentum,
        )
        return config

    def _sublayer_kwargs(self) -> dict:
        """Keyword arguments that give a sublayer this head's dtype policy."""
        return {"dtype": self.dtype_policy}

    def _batch_norm(self, **kwargs) -> keras.layers.BatchNormalization:
        """A BatchNormalization sublayer with this head's momentum."""
        return batch_norm(self.bn_momentum, **self._sublayer_kwargs(), **kwargs)


def batch_norm(momentum: float, **kwargs) -> keras.layers.BatchNormalization:
    """A head's batch normalization: the units' epsilon and `momentum`.

    Example:

    ```python
    batch_norm(0.9, center=False)
    ```

    Args:
        momentum: Momentum of the moving statistics.
        **kwargs: Passed to `keras.layers.BatchNormalization`.

    Returns:
        A `keras.layers.BatchNormalization`.
    """
    return keras.layers.BatchNormalization(
        momentum=momentum, epsilon=BN_EPSILON, **kwargs
    )


def require_spatial(
    head_name: str, input_shape: tuple, min_size: int = 1
) -> tuple[int, int, int]:
    """Checks that `input_shape` is an `(H, W, C)` map of at least min_size.

    Args:
        head_name: The head's registry name, used in the error message.
        input_shape: The feature shape without the batch dimension.
        min_size: The smallest height and width the head can take.

    Returns:
        `(H, W, C)`.

    Raises:
        ValueError: naming the head, the shape and the fix, if the features
            are flat, of another rank, or smaller than `min_size`.
    """
    if len(input_shape) == 1:
        raise UserError(
            f"Head '{head_name}' needs a spatial feature map (H, W, C) but "
            f"got flat features of shape {tuple(input_shape)}: use 'linear' "
            "or 'mlp' for flat features."
        )
    if len(input_shape) != 3:
        raise UserError(
            f"Head '{head_name}' needs a feature map of shape (H, W, C); got "
            f"shape {tuple(input_shape)}. Reshape the block output to "
            "(H, W, C) or flatten it and use 'linear' or 'mlp'."
        )
    height, width, channels = input_shape
    if height < min_size or width < min_size:
        raise UserError(
            f"Head '{head_name}' needs a feature map of at least "
            f"{min_size}x{min_size}; got shape {tuple(input_shape)}. Place "
            "the boundary earlier (on a larger map) or use 'mlp_sr', 'mlp', "
            "'light1'..'light4' or 'linear', which take any map size."
        )
    return height, width, channels
