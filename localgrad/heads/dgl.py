"""The auxiliary heads of DGL (Belilovsky et al.): `mlp_sr`, `mlp`, `cnn`."""

import math
from collections.abc import Sequence

import keras

from localgrad.errors import UserError
from localgrad.heads.base import Head, batch_norm, require_spatial
from localgrad.heads.pooling import AdaptiveAveragePooling2D

# Cap on the hidden width of the `mlp` head. A VGG's last map (2x2x512
# after pooling) flattens to 2048, and three 2048-wide Dense layers would
# be larger than the blocks they train; 1024 keeps the head a small
# fraction of a block's cost while never narrowing small features.
MLP_MAX_HIDDEN_UNITS = 1024


def conv_bn_relu(
    filters: int, kernel_size: int, count: int, bn_momentum: float, **kwargs
) -> list[keras.layers.Layer]:
    """`count` x (conv without bias, BatchNorm, ReLU), as a flat list."""
    layers = []
    for _ in range(count):
        layers += [
            keras.layers.Conv2D(
                filters, kernel_size, padding="same", use_bias=False, **kwargs
            ),
            batch_norm(bn_momentum, **kwargs),
            keras.layers.ReLU(**kwargs),
        ]
    return layers


def dense_bn_relu(
    units: int, count: int, bn_momentum: float, **kwargs
) -> list[keras.layers.Layer]:
    """`count` x (Dense without bias, BatchNorm, ReLU), as a flat list."""
    layers = []
    for _ in range(count):
        layers += [
            keras.layers.Dense(units, use_bias=False, **kwargs),
            batch_norm(bn_momentum, **kwargs),
            keras.layers.ReLU(**kwargs),
        ]
    return layers


def run_layers(layers, inputs, training=None):
    """Applies `layers` in order, passing `training` to each."""
    outputs = inputs
    for layer in layers:
        outputs = layer(outputs, training=training)
    return outputs


@keras.saving.register_keras_serializable(package="localgrad")
class MLPSRHead(Head):
    """DGL's `mlp_sr` head: 1x1 convs on a reduced map, then an MLP.

    On an S x S x C map: adaptive average pooling to ceil(S/4) x ceil(S/4);
    3 x (1x1 conv C -> C, BN, ReLU); adaptive average pooling to m x m with
    m = min(ceil(S/4), 2); flatten; 3 x (Dense C*m*m, BN, ReLU); Dense(n).
    Height and width are treated separately, so H x W maps work too.

    Example:

    ```python
    head = MLPSRHead((32, 32, 64), num_classes=10)
    head.first_pool.output_size   # (8, 8)
    head.second_pool.output_size  # (2, 2)
    head(np.zeros((4, 32, 32, 64))).shape  # (4, 10)
    ```

    Args:
        input_shape: `(H, W, C)` of the features.
        num_classes: Number of classes.
        **kwargs: Passed to `keras.layers.Layer`.

    Raises:
        ValueError: for flat features (use 'linear' or 'mlp').
    """

    head_name = "mlp_sr"

    def __init__(self, input_shape: Sequence[int], num_classes: int, **kwargs):
        super().__init__(input_shape, num_classes, **kwargs)
        height, width, channels = require_spatial(
            self.head_name, self.feature_shape
        )
        first = (math.ceil(height / 4), math.ceil(width / 4))
        second = (min(first[0], 2), min(first[1], 2))
        sub = self._sublayer_kwargs()
        self.first_pool = AdaptiveAveragePooling2D(first, **sub)
        self.conv_layers = conv_bn_relu(channels, 1, 3, self.bn_momentum, **sub)
        self.second_pool = AdaptiveAveragePooling2D(second, **sub)
        self.flatten = keras.layers.Flatten(**sub)
        self.dense_layers = dense_bn_relu(
            channels * second[0] * second[1], 3, self.bn_momentum, **sub
        )
        self.classifier = keras.layers.Dense(num_classes, **sub)
        self.build((None,) + self.feature_shape)

    def call(self, features, training=None):
        outputs = self.first_pool(features)
        outputs = run_layers(self.conv_layers, outputs, training)
        outputs = self.flatten(self.second_pool(outputs))
        outputs = run_layers(self.dense_layers, outputs, training)
        return self.classifier(outputs)


@keras.saving.register_keras_serializable(package="localgrad")
class MLPHead(Head):
    """DGL's `mlp` head: pool to 2x2, flatten, a 3-layer MLP.

    On an H x W x C map: adaptive average pooling to min(H, 2) x min(W, 2);
    flatten; 3 x (Dense, BN, ReLU); Dense(n). On flat `(C,)` features (an
    MLP's units are Dense layers) the pooling and flattening are skipped.
    The hidden width defaults to the flattened size (4C for maps of at
    least 2x2, C for flat features) capped at `MLP_MAX_HIDDEN_UNITS` = 1024.

    Example:

    ```python
    head = MLPHead((64,), num_classes=10)
    head(np.zeros((4, 64))).shape  # (4, 10)
    ```

    Args:
        input_shape: `(H, W, C)` or `(C,)`.
        num_classes: Number of classes.
        hidden_units: Width of the hidden Dense layers; None for the default.
        **kwargs: Passed to `keras.layers.Layer`.

    Raises:
        ValueError: for features of another rank or a bad `hidden_units`.
    """

    head_name = "mlp"

    def __init__(
        self,
        input_shape: Sequence[int],
        num_classes: int,
        hidden_units: int | None = None,
        **kwargs,
    ):
        super().__init__(input_shape, num_classes, **kwargs)
        sub = self._sublayer_kwargs()
        if len(self.feature_shape) == 1:
            self.pool, self.flatten = None, None
            flat_size = self.feature_shape[0]
        else:
            height, width, channels = require_spatial(
                self.head_name, self.feature_shape
            )
            size = (min(height, 2), min(width, 2))
            self.pool = AdaptiveAveragePooling2D(size, **sub)
            self.flatten = keras.layers.Flatten(**sub)
            flat_size = size[0] * size[1] * channels
        if hidden_units is None:
            hidden_units = min(flat_size, MLP_MAX_HIDDEN_UNITS)
        if not isinstance(hidden_units, int) or hidden_units < 1:
            raise UserError(
                f"Head 'mlp' needs hidden_units >= 1 (an int) or None; got "
                f"{hidden_units!r}."
            )
        self.hidden_units = hidden_units
        self.dense_layers = dense_bn_relu(
            hidden_units, 3, self.bn_momentum, **sub
        )
        self.classifier = keras.layers.Dense(num_classes, **sub)
        self.build((None,) + self.feature_shape)

    def call(self, features, training=None):
        outputs = features
        if self.pool is not None:
            outputs = self.flatten(self.pool(outputs))
        outputs = run_layers(self.dense_layers, outputs, training)
        return self.classifier(outputs)

    def get_config(self):
        config = super().get_config()
        config.update(hidden_units=self.hidden_units)
        return config


@keras.saving.register_keras_serializable(package="localgrad")
class CNNHead(Head):
    """The `cnn` head of DGL and Belilovsky et al. (2019).

    On an H x W x C map: 2 x (3x3 conv C -> C, BN, ReLU); adaptive average
    pooling to 2x2; flatten; BN; Dense(n). Needs a map of at least 2x2.

    Example:

    ```python
    head = CNNHead((8, 8, 16), num_classes=10)
    head(np.zeros((4, 8, 8, 16))).shape  # (4, 10)
    ```

    Args:
        input_shape: `(H, W, C)` with H, W >= 2.
        num_classes: Number of classes.
        **kwargs: Passed to `keras.layers.Layer`.

    Raises:
        ValueError: for flat features or a map smaller than 2x2.
    """

    head_name = "cnn"

    def __init__(self, input_shape: Sequence[int], num_classes: int, **kwargs):
        super().__init__(input_shape, num_classes, **kwargs)
        _, _, channels = require_spatial(
            self.head_name, self.feature_shape, min_size=2
        )
        sub = self._sublayer_kwargs()
        self.conv_layers = conv_bn_relu(channels, 3, 2, self.bn_momentum, **sub)
        self.pool = AdaptiveAveragePooling2D((2, 2), **sub)
        self.flatten = keras.layers.Flatten(**sub)
        self.norm = self._batch_norm()
        self.classifier = keras.layers.Dense(num_classes, **sub)
        self.build((None,) + self.feature_shape)

    def call(self, features, training=None):
        outputs = run_layers(self.conv_layers, features, training)
        outputs = self.flatten(self.pool(outputs))
        outputs = self.norm(outputs, training=training)
        return self.classifier(outputs)
