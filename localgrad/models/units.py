"""Plain (non-residual) units: conv-BN-ReLU and Dense-BN-ReLU.

A unit is the smallest piece of a network a block boundary can fall after.
These two cover VGG (one unit per convolution, a max-pool opening the unit
after it) and the MLP (one unit per hidden layer, the input flatten merged
into the first). Batch normalization uses momentum 0.9 and epsilon 1e-5,
the values of the PyTorch code the papers were run with.
"""

import keras

BN_MOMENTUM = 0.9
BN_EPSILON = 1e-5


def batch_norm(name: str) -> keras.layers.BatchNormalization:
    """The batch normalization layer every localgrad unit uses."""
    return keras.layers.BatchNormalization(
        momentum=BN_MOMENTUM, epsilon=BN_EPSILON, name=name
    )


def build_chain(layers, input_shape):
    """Builds `layers` one after the other; returns the last output shape."""
    shape = tuple(input_shape)
    for layer in layers:
        if not layer.built:
            layer.build(shape)
        shape = tuple(layer.compute_output_shape(shape))
    return shape


class ChainedUnit(keras.layers.Layer):
    """A unit whose layers run one after the other, as `_chain()` lists them.

    Subclasses list their layers in order in `_chain()` and write `call`
    (where the ReLU and the `training` flag go); this base builds the
    layers and computes the output shape from that list.

    Example:

    ```python
    class DenseReLU(ChainedUnit):
        def __init__(self, features, **kwargs):
            super().__init__(**kwargs)
            self.dense = keras.layers.Dense(features)

        def _chain(self):
            return [self.dense]

        def call(self, inputs):
            return keras.ops.relu(self.dense(inputs))
    ```
    """

    def _chain(self):
        raise NotImplementedError(
            f"{type(self).__name__} must list its layers in _chain()."
        )

    def build(self, input_shape):
        build_chain(self._chain(), input_shape)

    def compute_output_shape(self, input_shape):
        shape = tuple(input_shape)
        for layer in self._chain():
            shape = tuple(layer.compute_output_shape(shape))
        return shape


@keras.saving.register_keras_serializable(package="localgrad")
class ConvBNReLU(ChainedUnit):
    """An optional max-pool, then convolution, batch normalization and ReLU.

    The pool opens the unit, as in the VGG of SEDONA's and DGL's code: the
    unit before a pool hands on (and a head after it reads) the map before
    pooling. The pool is 2×2 with stride 2 and "same" padding, so that odd
    sides (7 → 4 on 28×28 inputs) work. The convolution has no bias (the
    batch normalization supplies it) and "same" padding.

    Example:

    ```python
    unit = ConvBNReLU(64, pool_first=True, name="unit_02")
    unit(keras.ops.ones((8, 32, 32, 3))).shape  # (8, 16, 16, 64)
    ```

    Args:
        filters: Number of output channels.
        kernel_size: Side of the square convolution kernel.
        strides: Stride of the convolution.
        pool_first: Whether a 2×2 max-pool opens the unit.
        **kwargs: Passed to `keras.layers.Layer` (e.g. `name`).
    """

    is_residual = False

    def __init__(
        self,
        filters: int,
        kernel_size: int = 3,
        strides: int = 1,
        pool_first: bool = False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.filters = filters
        self.kernel_size = kernel_size
        self.strides = strides
        self.pool_first = pool_first
        self.conv = keras.layers.Conv2D(
            filters,
            kernel_size,
            strides=strides,
            padding="same",
            use_bias=False,
            kernel_initializer="he_normal",
            name="conv",
        )
        self.bn = batch_norm("bn")
        self.max_pool = (
            keras.layers.MaxPooling2D(2, 2, padding="same", name="pool")
            if pool_first
            else None
        )

    def _chain(self):
        pool = [self.max_pool] if self.pool_first else []
        return pool + [self.conv, self.bn]

    def call(self, inputs, training=None):
        features = inputs
        if self.max_pool is not None:
            features = self.max_pool(features)
        features = self.conv(features)
        return keras.ops.relu(self.bn(features, training=training))

    def get_config(self):
        config = super().get_config()
        config.update(
            filters=self.filters,
            kernel_size=self.kernel_size,
            strides=self.strides,
            pool_first=self.pool_first,
        )
        return config


@keras.saving.register_keras_serializable(package="localgrad")
class DenseBNReLU(ChainedUnit):
    """Optional flatten, then Dense, batch normalization and ReLU.

    The Dense layer has no bias (the batch normalization supplies it).

    Example:

    ```python
    unit = DenseBNReLU(1024, flatten=True, name="unit_00")
    unit(keras.ops.ones((8, 28, 28, 1))).shape  # (8, 1024)
    ```

    Args:
        features: Number of output features.
        flatten: Whether the input is flattened first (the first unit of an
            MLP on images).
        **kwargs: Passed to `keras.layers.Layer` (e.g. `name`).
    """

    is_residual = False

    def __init__(self, features: int, flatten: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.features = features
        self.flatten = flatten
        self.flatten_layer = (
            keras.layers.Flatten(name="flatten") if flatten else None
        )
        self.dense = keras.layers.Dense(features, use_bias=False, name="dense")
        self.bn = batch_norm("bn")

    def _chain(self):
        head = [self.flatten_layer] if self.flatten else []
        return head + [self.dense, self.bn]

    def call(self, inputs, training=None):
        features = inputs
        if self.flatten_layer is not None:
            features = self.flatten_layer(features)
        features = self.dense(features)
        return keras.ops.relu(self.bn(features, training=training))

    def get_config(self):
        config = super().get_config()
        config.update(features=self.features, flatten=self.flatten)
        return config
