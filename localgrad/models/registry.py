"""Architectures by name, all built with one signature."""

import math
from collections.abc import Sequence

from localgrad.errors import UserError
from localgrad.models.associated_nets import build_cnn_al, build_vgg_al
from localgrad.models.cifar_resnet import (
    CIFAR_RESNET_DEPTHS,
    build_cifar_resnet,
)
from localgrad.models.mlp import build_mlp
from localgrad.models.resnet import RESNET_LAYOUTS, build_resnet
from localgrad.models.vgg import VGG_LAYOUTS, build_vgg
from localgrad.network import Network

MODEL_NAMES = (
    ("mlp",)
    + tuple(VGG_LAYOUTS)
    + tuple(RESNET_LAYOUTS)
    + tuple(CIFAR_RESNET_DEPTHS)
    + ("cnn_al", "vgg_al")
)


def build(
    name: str,
    input_shape: Sequence[int],
    num_classes: int,
    width: float = 1.0,
) -> Network:
    """Builds the architecture `name` as a `localgrad.Network` (logits out).

    Names: `"mlp"` (4 hidden units of `int(1024 * width)`), `"vgg11"`,
    `"vgg13"`, `"vgg16"`, `"vgg19"` (with batch normalization), `"resnet18"`,
    `"resnet34"`, `"resnet50"`, `"resnet101"`, `"resnet152"`; the CIFAR
    ResNets `"resnet20"`, `"resnet32"` (the stem a unit of its own); and the
    Associated Learning paper's `"cnn_al"` and `"vgg_al"` (4 units each, one
    per AL component). Units are named `unit_00`, `unit_01`, ...; for VGG
    and ResNet-18..152, images with a shorter side under 64 pixels get the
    CIFAR stem and classifier, larger ones the ImageNet ones.

    Example:

    ```python
    net = localgrad.models.build("vgg19", (32, 32, 3), 10, width=0.5)
    net.num_units  # 16
    logits = net(images)  # (batch, 10)
    ```

    Args:
        name: One of `MODEL_NAMES`.
        input_shape: Shape of one example without the batch dimension,
            `(height, width, channels)` for the convolutional networks.
        num_classes: Number of classes n.
        width: Multiplier of every channel and hidden count: a count c
            becomes `max(1, int(c * width))`.

    Returns:
        The built network.

    Raises:
        ValueError: for an unknown name, a width that is not positive, a
            number of classes under 1 or a bad input shape.
    """
    if name not in MODEL_NAMES:
        raise UserError(
            f"Unknown model name {name!r}; use one of {list(MODEL_NAMES)}."
        )
    if not (isinstance(width, (int, float)) and math.isfinite(width)) or (
        width <= 0
    ):
        raise UserError(
            f"width must be a positive number (1.0 is the published size); "
            f"got width={width!r}."
        )
    if int(num_classes) != num_classes or num_classes < 1:
        raise UserError(
            f"num_classes must be a positive integer; got {num_classes!r}."
        )
    shape = tuple(input_shape)
    if not shape or any(int(side) != side or side < 1 for side in shape):
        raise UserError(
            "input_shape must be the non-empty shape of one example without "
            f"the batch dimension, all sides positive; got {input_shape!r}."
        )
    shape = tuple(int(side) for side in shape)
    num_classes = int(num_classes)
    if name == "mlp":
        return build_mlp(shape, num_classes, width)
    if name in VGG_LAYOUTS:
        return build_vgg(name, shape, num_classes, width)
    if name in CIFAR_RESNET_DEPTHS:
        return build_cifar_resnet(name, shape, num_classes, width)
    if name == "cnn_al":
        return build_cnn_al(shape, num_classes, width)
    if name == "vgg_al":
        return build_vgg_al(shape, num_classes, width)
    return build_resnet(name, shape, num_classes, width)
