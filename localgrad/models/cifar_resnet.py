"""ResNet-20 and ResNet-32: the CIFAR ResNets of He et al. (2016).

A 3×3 stem of 16 channels, then 3 stages of n basic blocks (n = 3 for
ResNet-20, 5 for ResNet-32) of 16, 32 and 64 channels, the first block of
stages 2 and 3 with stride 2; global average pool and Dense(classes).
Unlike `resnet18`..`resnet152`, the stem is a unit of its own: the
Associated Learning paper (Kao & Chen, 2021) trains these networks as 4
components, the stem and one stage each (methods.md §7), and
`stage_boundaries` gives that split. The blocks are localgrad's
`BasicBlock`s (ReLU, a projection shortcut with batch normalization where
the shape changes), not the official AL code's variant (ELU, a 1×1
shortcut without normalization).
"""

from collections.abc import Sequence

import keras

from localgrad.errors import UserError
from localgrad.models.common import image_shape, scale, unit_name
from localgrad.models.residual import BasicBlock, ResNetStem
from localgrad.network import Network

# Basic blocks per stage.
CIFAR_RESNET_DEPTHS = {"resnet20": 3, "resnet32": 5}
CIFAR_STAGE_FILTERS = (16, 32, 64)


def stage_boundaries(name: str) -> list[int]:
    """The boundaries that make the stem and each stage one block.

    Example:

    ```python
    stage_boundaries("resnet20")  # [1, 4, 7]: stem | 3 | 3 | 3 blocks
    net = localgrad.models.build("resnet20", (32, 32, 3), 10)
    model = localgrad.AssociatedModel(
        net, boundaries=stage_boundaries("resnet20"), label_width=300)
    ```

    Args:
        name: `"resnet20"` or `"resnet32"`.

    Returns:
        The 3 boundaries (units after which a block ends).

    Raises:
        ValueError: for another name.
    """
    if name not in CIFAR_RESNET_DEPTHS:
        raise UserError(
            f"stage_boundaries is defined for {sorted(CIFAR_RESNET_DEPTHS)}; "
            f"got {name!r}."
        )
    depth = CIFAR_RESNET_DEPTHS[name]
    return [1 + stage * depth for stage in range(len(CIFAR_STAGE_FILTERS))]


def build_cifar_resnet(
    name: str,
    input_shape: Sequence[int],
    num_classes: int,
    width: float = 1.0,
) -> Network:
    """Builds ResNet-20 or ResNet-32: the stem, then one unit per block.

    Units: ResNet-20 10 (the stem and 9 blocks), ResNet-32 16.

    Example:

    ```python
    net = build_cifar_resnet("resnet20", (32, 32, 3), 10)
    net.num_units              # 10
    net.unit_output_shapes[0]  # (32, 32, 16): the stem
    net.unit_output_shapes[-1]  # (8, 8, 64)
    ```

    Args:
        name: `"resnet20"` or `"resnet32"`.
        input_shape: `(height, width, channels)` of one image.
        num_classes: Number of classes n (logits).
        width: Multiplier of every channel count.

    Returns:
        A `localgrad.Network`: a `ResNetStem` unit, then `BasicBlock`s.

    Raises:
        ValueError: for an unknown name or a non-image input shape.
    """
    if name not in CIFAR_RESNET_DEPTHS:
        raise UserError(
            f"Unknown CIFAR ResNet {name!r}; use one of "
            f"{sorted(CIFAR_RESNET_DEPTHS)}."
        )
    shape = image_shape(input_shape, name)
    units = [
        ResNetStem(
            scale(CIFAR_STAGE_FILTERS[0], width),
            kind="cifar",
            name=unit_name(0),
        )
    ]
    for stage, filters in enumerate(CIFAR_STAGE_FILTERS):
        for index in range(CIFAR_RESNET_DEPTHS[name]):
            units.append(
                BasicBlock(
                    scale(filters, width),
                    strides=2 if stage > 0 and index == 0 else 1,
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
    return Network(units, classifier, shape, architecture=name, name=name)
