"""VGG-11/13/16/19 with batch normalization, one unit per convolution."""

from collections.abc import Sequence

import keras

from localgrad.errors import UserError
from localgrad.models.common import (
    image_shape,
    is_small_input,
    scale,
    unit_name,
)
from localgrad.models.units import ConvBNReLU
from localgrad.network import Network

# Channels of each 3×3 convolution, in order; "M" is a 2×2 max-pool.
VGG_LAYOUTS = {
    "vgg11": "64 M 128 M 256 256 M 512 512 M 512 512 M",
    "vgg13": "64 64 M 128 128 M 256 256 M 512 512 M 512 512 M",
    "vgg16": "64 64 M 128 128 M 256 256 256 M 512 512 512 M 512 512 512 M",
    "vgg19": (
        "64 64 M 128 128 M 256 256 256 256 M 512 512 512 512 M "
        "512 512 512 512 M"
    ),
}
IMAGENET_HIDDEN = 4096


def build_vgg(
    name: str,
    input_shape: Sequence[int],
    num_classes: int,
    width: float = 1.0,
) -> Network:
    """Builds a VGG with batch normalization.

    One unit per 3×3 conv-BN-ReLU (VGG-19: 16 units, VGG-16: 13, VGG-13: 10,
    VGG-11: 8). Each max-pool opens the unit after it, as in the VGG of
    SEDONA's and DGL's code, so a unit before a pool hands on its map
    before pooling (and a head there reads that map); the last max-pool
    opens the classifier. Small inputs (shorter side under 64) get the
    CIFAR classifier, max-pool + global average pool + Dense(n); larger
    ones the ImageNet classifier, max-pool + flatten + 2 × (Dense
    `4096 * width`, ReLU, Dropout 0.5) + Dense(n).

    Example:

    ```python
    net = build_vgg("vgg19", (32, 32, 3), 10, width=0.25)
    net.num_units  # 16
    ```

    Args:
        name: One of `VGG_LAYOUTS` (`"vgg11"`, ..., `"vgg19"`).
        input_shape: `(height, width, channels)` of one image.
        num_classes: Number of classes n (logits).
        width: Multiplier of every channel and hidden count.

    Returns:
        A `localgrad.Network`.

    Raises:
        ValueError: for an unknown name or a non-image input shape.
    """
    if name not in VGG_LAYOUTS:
        raise UserError(
            f"Unknown VGG {name!r}; use one of {sorted(VGG_LAYOUTS)}."
        )
    shape = image_shape(input_shape, name)
    layout = VGG_LAYOUTS[name].split()
    units = []
    for index, entry in enumerate(layout):
        if entry == "M":
            continue
        units.append(
            ConvBNReLU(
                scale(int(entry), width),
                pool_first=index > 0 and layout[index - 1] == "M",
                name=unit_name(len(units)),
            )
        )
    last_pool = keras.layers.MaxPooling2D(2, 2, padding="same", name="max_pool")
    if is_small_input(shape):
        classifier = keras.Sequential(
            [
                last_pool,
                keras.layers.GlobalAveragePooling2D(name="pool"),
                keras.layers.Dense(num_classes, name="logits"),
            ],
            name="classifier",
        )
    else:
        hidden = scale(IMAGENET_HIDDEN, width)
        classifier = keras.Sequential(
            [
                last_pool,
                keras.layers.Flatten(name="flatten"),
                keras.layers.Dense(hidden, activation="relu", name="fc1"),
                keras.layers.Dropout(0.5, name="dropout1"),
                keras.layers.Dense(hidden, activation="relu", name="fc2"),
                keras.layers.Dropout(0.5, name="dropout2"),
                keras.layers.Dense(num_classes, name="logits"),
            ],
            name="classifier",
        )
    return Network(units, classifier, shape, architecture=name, name=name)
