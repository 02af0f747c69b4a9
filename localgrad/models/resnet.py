"""ResNet-18/34/50/101/152, one unit per residual block."""

from collections.abc import Sequence

import keras

from localgrad.errors import UserError
from localgrad.models.common import (
    image_shape,
    is_small_input,
    scale,
    unit_name,
)
from localgrad.models.residual import BasicBlock, BottleneckBlock, ResNetStem
from localgrad.network import Network

# (block class, blocks per stage); the stages have 64, 128, 256, 512 filters.
RESNET_LAYOUTS = {
    "resnet18": (BasicBlock, (2, 2, 2, 2)),
    "resnet34": (BasicBlock, (3, 4, 6, 3)),
    "resnet50": (BottleneckBlock, (3, 4, 6, 3)),
    "resnet101": (BottleneckBlock, (3, 4, 23, 3)),
    "resnet152": (BottleneckBlock, (3, 8, 36, 3)),
}
STAGE_FILTERS = (64, 128, 256, 512)
STEM_FILTERS = 64


def build_resnet(
    name: str,
    input_shape: Sequence[int],
    num_classes: int,
    width: float = 1.0,
) -> Network:
    """Builds a ResNet: one unit per residual block, the stem in the first.

    Units: ResNet-18 8, ResNet-34 16, ResNet-50 16, ResNet-101 33, ResNet-152
    50. Small inputs (shorter side under 64) get the CIFAR stem (3×3 conv,
    stride 1, BN, ReLU), larger ones the ImageNet stem (7×7 conv, stride 2,
    BN, ReLU, 3×3 max-pool, stride 2). The first block of stages 2 to 4 has
    stride 2. The classifier is global average pool + Dense(n).

    Example:

    ```python
    net = build_resnet("resnet18", (32, 32, 3), 10, width=0.25)
    out, g = net.units[1](x, return_residual=True)  # g(x) for transport
    ```

    Args:
        name: One of `RESNET_LAYOUTS` (`"resnet18"`, ..., `"resnet152"`).
        input_shape: `(height, width, channels)` of one image.
        num_classes: Number of classes n (logits).
        width: Multiplier of every channel count.

    Returns:
        A `localgrad.Network` whose units are `BasicBlock`s or
        `BottleneckBlock`s.

    Raises:
        ValueError: for an unknown name or a non-image input shape.
    """
    if name not in RESNET_LAYOUTS:
        raise UserError(
            f"Unknown ResNet {name!r}; use one of {sorted(RESNET_LAYOUTS)}."
        )
    shape = image_shape(input_shape, name)
    block, depths = RESNET_LAYOUTS[name]
    stem = ResNetStem(
        scale(STEM_FILTERS, width),
        kind="cifar" if is_small_input(shape) else "imagenet",
        name="stem",
    )
    units = []
    for stage, (filters, depth) in enumerate(zip(STAGE_FILTERS, depths)):
        for index in range(depth):
            units.append(
                block(
                    scale(filters, width),
                    strides=2 if stage > 0 and index == 0 else 1,
                    stem=stem if not units else None,
                    name=unit_name(len(units)),
                )
            )
    classifier = keras.Sequential(
        [
            keras.layers.GlobalAveragePooling2D(name="pool"),
            keras.layers.Dense(num_classes, name="logits"),
        ],
        name="classifier",
    )
    return Network(
        units,
        classifier,
        shape,
        architecture=name,
        # The authors' light heads keep all C channels of a basic block.
        light_head_reduction=1 if block is BasicBlock else 4,
        name=name,
    )
