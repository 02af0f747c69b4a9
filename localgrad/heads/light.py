"""SEDONA's light heads `light1`..`light4` (MobileNetV2-style)."""

from collections.abc import Sequence

import keras

from localgrad.errors import UserError
from localgrad.heads.base import Head, batch_norm, require_spatial
from localgrad.models.units import BN_MOMENTUM

# Expansion of the inverted residual blocks' hidden layer.
EXPANSION = 4
# Channels of the last 1x1 conv at width_mult = 1.
LAST_CHANNELS = 512


@keras.saving.register_keras_serializable(package="localgrad")
class InvertedResidual(keras.layers.Layer):
    """A MobileNetV2 inverted residual block, with ReLU (as SEDONA's heads).

    1x1 conv to `input_channels * expansion`, BN, ReLU; depthwise 3x3 with
    `strides`, BN, ReLU; 1x1 conv to `filters`, BN without beta (linear:
    whatever follows is a conv and a BN, which would cancel it). The input is
    added back when the block keeps the shape (stride 1, same channels).
    Convs use padding "same", so 1x1 and 2x2 maps work.

    Example:

    ```python
    block = InvertedResidual(input_channels=8, filters=12, strides=2)
    block(np.zeros((2, 4, 4, 8))).shape  # (2, 2, 2, 12)
    ```

    Args:
        input_channels: Channels of the input.
        filters: Channels of the output.
        strides: Stride of the depthwise conv (1 or 2).
        expansion: Width of the hidden layer, in multiples of the input's.
        bn_momentum: Momentum of the BatchNorm moving statistics.
        **kwargs: Passed to `keras.layers.Layer`.
    """

    def __init__(
        self,
        input_channels: int,
        filters: int,
        strides: int = 1,
        expansion: int = EXPANSION,
        bn_momentum: float = BN_MOMENTUM,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.input_channels = input_channels
        self.filters = filters
        self.strides = strides
        self.expansion = expansion
        self.bn_momentum = float(bn_momentum)
        self.use_residual = strides == 1 and input_channels == filters
        sub = {"dtype": self.dtype_policy}
        self.expand = keras.layers.Conv2D(
            input_channels * expansion, 1, use_bias=False, **sub
        )
        self.expand_norm = batch_norm(bn_momentum, **sub)
        self.depthwise = keras.layers.DepthwiseConv2D(
            3, strides=strides, padding="same", use_bias=False, **sub
        )
        self.depthwise_norm = batch_norm(bn_momentum, **sub)
        self.project = keras.layers.Conv2D(filters, 1, use_bias=False, **sub)
        # No beta: the block's output always meets a 1x1 conv and a
        # BatchNorm, which remove any per-channel shift, so a beta here
        # would get no gradient.
        self.project_norm = batch_norm(bn_momentum, center=False, **sub)

    def build(self, input_shape):
        self.call(keras.KerasTensor(input_shape, dtype=self.compute_dtype))

    def call(self, inputs, training=None):
        outputs = self.expand_norm(self.expand(inputs), training=training)
        outputs = keras.ops.relu(outputs)
        outputs = self.depthwise(outputs)
        outputs = self.depthwise_norm(outputs, training=training)
        outputs = keras.ops.relu(outputs)
        outputs = self.project_norm(self.project(outputs), training=training)
        if self.use_residual:
            outputs = outputs + inputs
        return outputs

    def compute_output_shape(self, input_shape):
        height, width = input_shape[1], input_shape[2]
        if self.strides > 1:
            height = None if height is None else -(-height // self.strides)
            width = None if width is None else -(-width // self.strides)
        return (input_shape[0], height, width, self.filters)

    def get_config(self):
        config = super().get_config()
        config.update(
            input_channels=self.input_channels,
            filters=self.filters,
            strides=self.strides,
            expansion=self.expansion,
            bn_momentum=self.bn_momentum,
        )
        return config


def light_block_layout(
    reduced: int, depth: int, height: int, width: int
) -> list[tuple[int, int, int]]:
    """`(input_channels, filters, strides)` of a light head's blocks.

    The d - 1 inverted residual blocks follow the reduction to P = `reduced`
    channels and the stride-2 depthwise conv (a `height` x `width` map,
    ceil(H/2) x ceil(W/2) after it). Block i (0-based) has stride 2 when i
    is odd and its input map is at least 2x2, and a stride-2 block widens
    by P // 2; the others keep stride 1 and the width (and add their input
    back). So light2 is P -> P; light3 P -> P, P -> 1.5P (stride 2); light4
    P -> P, P -> 1.5P (stride 2), 1.5P -> 1.5P.

    Example:

    ```python
    light_block_layout(4, depth=4, height=8, width=8)
    # [(4, 4, 1), (4, 6, 2), (6, 6, 1)]
    ```

    Args:
        reduced: P, the channels after the head's first 1x1 conv.
        depth: The head's depth d (d - 1 blocks).
        height: H of the head's input map.
        width: W of the head's input map.

    Returns:
        One `(input_channels, filters, strides)` per block.
    """
    height, width = -(-height // 2), -(-width // 2)
    layout, channels = [], reduced
    for index in range(depth - 1):
        if index % 2 == 1 and height >= 2 and width >= 2:
            layout.append((channels, channels + reduced // 2, 2))
            channels += reduced // 2
            height, width = -(-height // 2), -(-width // 2)
        else:
            layout.append((channels, channels, 1))
    return layout


@keras.saving.register_keras_serializable(package="localgrad")
class LightHead(Head):
    """SEDONA's light head of depth d (`light1`..`light4`).

    As the authors built it (methods.md §2): on an H x W x C map, 1x1 conv
    C -> P with P = max(C // reduction, 1) (the authors' reduction is 4,
    and 1 after the basic blocks of ResNet-18/34), BN, ReLU; depthwise
    3x3 stride 2, BN, ReLU; d - 1 inverted residual blocks (expansion 4,
    ReLU), block i (0-based) of stride 2 when i is odd and its map is at
    least 2x2, a stride-2 block widening by P // 2 (see
    `light_block_layout`); 1x1 conv to int(512 * width_mult), BN, ReLU;
    global average pooling; Dense(n).
    Padding is "same", so any map size down to 1x1 works.

    Example:

    ```python
    head = LightHead((8, 8, 16), num_classes=10, depth=3)
    [(b.filters, b.strides) for b in head.blocks]  # [(4, 1), (6, 2)]
    head(np.zeros((4, 8, 8, 16))).shape  # (4, 10)
    LightHead((8, 8, 16), 10, reduction=1).reduce.filters  # 16: P = C
    ```

    Args:
        input_shape: `(H, W, C)` of the features.
        num_classes: Number of classes.
        depth: d in 1..4.
        width_mult: Multiplies the 512 channels of the last 1x1 conv.
        reduction: Divides the input's channels C into the P of the first
            1x1 conv.
        **kwargs: Passed to `Head` (e.g. `bn_momentum`) and
            `keras.layers.Layer`.

    Raises:
        ValueError: for flat features, a depth outside 1..4, a
            non-positive width_mult or a reduction that is not a positive
            integer.
    """

    head_name = "light1"

    def __init__(
        self,
        input_shape: Sequence[int],
        num_classes: int,
        depth: int = 1,
        width_mult: float = 1.0,
        reduction: int = 4,
        **kwargs,
    ):
        if depth not in (1, 2, 3, 4):
            raise UserError(
                f"A light head has depth 1..4 ('light1'..'light4'); got "
                f"depth={depth!r}."
            )
        super().__init__(
            input_shape, num_classes, kind=f"light{depth}", **kwargs
        )
        if not width_mult > 0:
            raise UserError(
                f"Head 'light{depth}' needs width_mult > 0; got {width_mult}."
            )
        if isinstance(reduction, bool) or not (
            isinstance(reduction, int) and reduction >= 1
        ):
            raise UserError(
                f"Head 'light{depth}' needs reduction to be an integer >= 1 "
                f"(P = C // reduction); got {reduction!r}."
            )
        height, width, channels = require_spatial(
            self.head_name, self.feature_shape
        )
        self.depth = depth
        self.reduction = reduction
        self.width_mult = float(width_mult)
        self.last_channels = max(int(LAST_CHANNELS * width_mult), 1)
        sub = self._sublayer_kwargs()
        reduced = max(channels // reduction, 1)
        self.reduce = keras.layers.Conv2D(reduced, 1, use_bias=False, **sub)
        self.reduce_norm = self._batch_norm()
        self.depthwise = keras.layers.DepthwiseConv2D(
            3, strides=2, padding="same", use_bias=False, **sub
        )
        self.depthwise_norm = self._batch_norm()
        self.blocks = [
            InvertedResidual(
                block_in,
                block_out,
                strides=strides,
                bn_momentum=self.bn_momentum,
                **sub,
            )
            for block_in, block_out, strides in light_block_layout(
                reduced, depth, height, width
            )
        ]
        self.last = keras.layers.Conv2D(
            self.last_channels, 1, use_bias=False, **sub
        )
        self.last_norm = self._batch_norm()
        self.pool = keras.layers.GlobalAveragePooling2D(**sub)
        self.classifier = keras.layers.Dense(num_classes, **sub)
        self.build((None,) + self.feature_shape)

    def call(self, features, training=None):
        outputs = self.reduce_norm(self.reduce(features), training=training)
        outputs = keras.ops.relu(outputs)
        outputs = self.depthwise(outputs)
        outputs = self.depthwise_norm(outputs, training=training)
        outputs = keras.ops.relu(outputs)
        for block in self.blocks:
            outputs = block(outputs, training=training)
        outputs = self.last_norm(self.last(outputs), training=training)
        outputs = keras.ops.relu(outputs)
        return self.classifier(self.pool(outputs))

    def get_config(self):
        config = super().get_config()
        config.update(
            depth=self.depth,
            width_mult=self.width_mult,
            reduction=self.reduction,
        )
        return config
