"""Residual units of ResNets: the stem and the basic and bottleneck blocks.

A residual unit computes `relu(s(x) + g(x))`, where `g` is the residual
branch (convolutions and batch normalizations) and `s` the shortcut: the
identity, or a 1×1 convolution + batch normalization when the block changes
the shape. Transport regularization (methods.md §4) needs `g(x)` on its own,
so every residual unit accepts `return_residual=True` in `call` and then
returns the pair `(output, g(x))`. The class attribute `is_residual` is `True`
on residual units and `False` on the plain units of `units.py`.

The first unit of a ResNet also holds the network's stem (a `ResNetStem`):
`x` is then the stem's output.
"""

import keras

from localgrad.errors import UserError
from localgrad.models.units import ChainedUnit, batch_norm, build_chain

STEM_KINDS = ("cifar", "imagenet")


def _conv(filters, kernel_size, strides, name):
    return keras.layers.Conv2D(
        filters,
        kernel_size,
        strides=strides,
        padding="same",
        use_bias=False,
        kernel_initializer="he_normal",
        name=name,
    )


def _subsampled_sides(shape, strides):
    return tuple(
        None if side is None else -(-side // strides) for side in shape[1:3]
    )


@keras.saving.register_keras_serializable(package="localgrad")
class ResNetStem(ChainedUnit):
    """The layers a ResNet applies before its first residual block.

    `"cifar"` (small inputs): 3×3 convolution with stride 1, batch
    normalization, ReLU. `"imagenet"`: 7×7 convolution with stride 2, batch
    normalization, ReLU, 3×3 max-pool with stride 2 (4× smaller sides).

    Example:

    ```python
    stem = ResNetStem(64, kind="imagenet")
    stem(keras.ops.ones((2, 224, 224, 3))).shape  # (2, 56, 56, 64)
    ```

    Args:
        filters: Number of output channels.
        kind: `"cifar"` or `"imagenet"`.
        **kwargs: Passed to `keras.layers.Layer`.

    Raises:
        ValueError: for an unknown `kind`.
    """

    def __init__(self, filters: int, kind: str = "cifar", **kwargs):
        super().__init__(**kwargs)
        if kind not in STEM_KINDS:
            raise UserError(
                f"Unknown stem kind {kind!r}; use one of {STEM_KINDS}."
            )
        self.filters = filters
        self.kind = kind
        if kind == "cifar":
            self.conv = _conv(filters, 3, 1, "conv")
            self.max_pool = None
        else:
            self.conv = _conv(filters, 7, 2, "conv")
            self.max_pool = keras.layers.MaxPooling2D(
                3, 2, padding="same", name="pool"
            )
        self.bn = batch_norm("bn")

    def _chain(self):
        pool = [self.max_pool] if self.max_pool is not None else []
        return [self.conv, self.bn] + pool

    def call(self, inputs, training=None):
        features = self.bn(self.conv(inputs), training=training)
        features = keras.ops.relu(features)
        if self.max_pool is not None:
            features = self.max_pool(features)
        return features

    def get_config(self):
        config = super().get_config()
        config.update(filters=self.filters, kind=self.kind)
        return config


class ResidualUnit(keras.layers.Layer):
    """Base class of the residual blocks: `relu(s(x) + g(x))`.

    Subclasses set `expansion` and define `_branch_shapes()`: the
    `(filters, kernel_size, strides)` of each convolution of `g`, each followed
    by batch normalization, with a ReLU between two of them.
    """

    is_residual = True
    expansion = 1

    def __init__(
        self,
        filters: int,
        strides: int = 1,
        stem: keras.layers.Layer | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if isinstance(stem, dict):
            stem = keras.saving.deserialize_keras_object(stem)
        self.filters = filters
        self.strides = strides
        self.stem = stem
        self.convs = []
        self.bns = []
        for index, (size, kernel, stride) in enumerate(self._branch_shapes()):
            self.convs.append(_conv(size, kernel, stride, f"conv{index + 1}"))
            self.bns.append(batch_norm(f"bn{index + 1}"))
        self.shortcut_conv = None
        self.shortcut_bn = None

    @property
    def out_channels(self) -> int:
        """Number of output channels: `filters * expansion`."""
        return self.filters * self.expansion

    def _branch_shapes(self):
        """`(filters, kernel, stride)` of each conv of g; every subclass
        defines it (BasicBlock, BottleneckBlock)."""
        raise NotImplementedError(
            f"{type(self).__name__} must define _branch_shapes()."
        )

    def build(self, input_shape):
        shape = tuple(input_shape)
        if self.stem is not None:
            shape = build_chain([self.stem], shape)
        if self.strides != 1 or shape[-1] != self.out_channels:
            # A 1×1 convolution with stride s equals subsampling every s-th
            # pixel, then a 1×1 convolution with stride 1 (`_shortcut` does
            # that): TF 2.21's oneDNN kernel for the filter gradient of a
            # strided 1×1 convolution corrupts memory on CPU.
            self.shortcut_conv = _conv(self.out_channels, 1, 1, "shortcut_conv")
            self.shortcut_bn = batch_norm("shortcut_bn")
            subsampled = (shape[0], *_subsampled_sides(shape, self.strides))
            build_chain(
                [self.shortcut_conv, self.shortcut_bn], subsampled + shape[-1:]
            )
        branch = [layer for pair in zip(self.convs, self.bns) for layer in pair]
        build_chain(branch, shape)

    def call(self, inputs, training=None, return_residual=False):
        """Runs the unit.

        Args:
            inputs: A batch of feature maps (of images for the first unit).
            training: Whether batch normalization uses batch statistics.
            return_residual: If `True`, also return the residual branch's
                output `g(x)`.

        Returns:
            `relu(s(x) + g(x))`, or the pair `(relu(s(x) + g(x)), g(x))` when
            `return_residual` is `True`.
        """
        features = inputs
        if self.stem is not None:
            features = self.stem(features, training=training)
        shortcut = self._shortcut(features, training)
        residual = features
        for index, (conv, bn) in enumerate(zip(self.convs, self.bns)):
            residual = bn(conv(residual), training=training)
            if index < len(self.convs) - 1:
                residual = keras.ops.relu(residual)
        outputs = keras.ops.relu(shortcut + residual)
        if return_residual:
            return outputs, residual
        return outputs

    def _shortcut(self, features, training):
        if self.shortcut_conv is None:
            return features
        if self.strides != 1:
            features = features[:, :: self.strides, :: self.strides, :]
        return self.shortcut_bn(self.shortcut_conv(features), training=training)

    def get_config(self):
        config = super().get_config()
        config.update(
            filters=self.filters,
            strides=self.strides,
            stem=(
                None
                if self.stem is None
                else keras.saving.serialize_keras_object(self.stem)
            ),
        )
        return config


@keras.saving.register_keras_serializable(package="localgrad")
class BasicBlock(ResidualUnit):
    """The two-convolution residual block of ResNet-18/34.

    `g` = 3×3 conv (stride `strides`), BN, ReLU, 3×3 conv, BN; the output has
    `filters` channels.

    Example:

    ```python
    block = BasicBlock(128, strides=2, name="unit_02")
    out, g = block(keras.ops.ones((2, 32, 32, 64)), return_residual=True)
    out.shape, g.shape  # (2, 16, 16, 128) twice
    ```

    Args:
        filters: Number of channels of both convolutions and of the output.
        strides: Stride of the first convolution and of the shortcut.
        stem: Optional `ResNetStem` run before the block (first unit only).
        **kwargs: Passed to `keras.layers.Layer`.
    """

    expansion = 1

    def _branch_shapes(self):
        return [(self.filters, 3, self.strides), (self.filters, 3, 1)]


@keras.saving.register_keras_serializable(package="localgrad")
class BottleneckBlock(ResidualUnit):
    """The three-convolution residual block of ResNet-50/101/152.

    `g` = 1×1 conv, BN, ReLU, 3×3 conv (stride `strides`), BN, ReLU, 1×1 conv
    to `4 * filters` channels, BN (the stride sits on the 3×3 convolution, as
    in torchvision's ResNet v1.5).

    Example:

    ```python
    block = BottleneckBlock(64, name="unit_00")
    block(keras.ops.ones((2, 32, 32, 64))).shape  # (2, 32, 32, 256)
    ```

    Args:
        filters: Channels of the inner convolutions; the output has
            `4 * filters`.
        strides: Stride of the 3×3 convolution and of the shortcut.
        stem: Optional `ResNetStem` run before the block (first unit only).
        **kwargs: Passed to `keras.layers.Layer`.
    """

    expansion = 4

    def _branch_shapes(self):
        return [
            (self.filters, 1, 1),
            (self.filters, 3, self.strides),
            (self.filters * self.expansion, 1, 1),
        ]
