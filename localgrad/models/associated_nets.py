"""CNN_AL and VGG_AL: the convolutional networks of the AL paper.

Kao & Chen (Neural Computation 2021) ran Associated Learning on CIFAR with
two plain convolutional networks of 4 components each (methods.md §7).
Here each component is one unit, a small `keras.Sequential`, so that
`AssociatedModel(net, num_blocks=4, ...)` cuts exactly the published
components; the same network trains end to end, or with DGL, through its
own classifier.

- `cnn_al`: conv pairs [32, 32] [32, 32 stride 2] [64, 64] [64, 64
  stride 2]; 3×3 "same" convolutions with bias, ELU, no normalization.
- `vgg_al`: [128, 256, pool] [256, 512, pool] [512, pool, 512, pool]
  [flatten, Dense 1024 ×2]; 3×3 conv (no bias), batch normalization, ELU;
  2×2 max-pools ("same", so that 28×28 inputs work); Dense with ELU.

Both use He-normal initialization, as the official code.
"""

from collections.abc import Sequence

import keras

from localgrad.models.common import image_shape, scale, unit_name
from localgrad.models.units import batch_norm
from localgrad.network import Network

# CNN_AL: per unit, the two convolutions' (filters, strides).
CNN_AL_LAYOUT = (
    ((32, 1), (32, 1)),
    ((32, 1), (32, 2)),
    ((64, 1), (64, 1)),
    ((64, 1), (64, 2)),
)
# VGG_AL: per unit, its layers: a number is a 3×3 conv-BN-ELU with that
# many filters, "M" a 2×2 max-pool, "F" a flatten, "D<n>" a Dense(n, elu).
VGG_AL_LAYOUT = (
    "128 256 M",
    "256 512 M",
    "512 M 512 M",
    "F D1024 D1024",
)
ACTIVATION = "elu"


def _conv(filters, strides=1, use_bias=True, activation=None, name=None):
    return keras.layers.Conv2D(
        filters,
        3,
        strides=strides,
        padding="same",
        activation=activation,
        use_bias=use_bias,
        kernel_initializer="he_normal",
        name=name,
    )


def build_cnn_al(
    input_shape: Sequence[int], num_classes: int, width: float = 1.0
) -> Network:
    """Builds CNN_AL: 4 units of two 3×3 convolutions with ELU each.

    The second convolution of units 1 and 3 has stride 2. The classifier
    (used by backprop and DGL, not by AL) is flatten + Dense(n).

    Example:

    ```python
    net = build_cnn_al((32, 32, 3), 10)
    net.unit_output_shapes
    # [(32, 32, 32), (16, 16, 32), (16, 16, 64), (8, 8, 64)]
    ```

    Args:
        input_shape: `(height, width, channels)` of one image.
        num_classes: Number of classes n (logits).
        width: Multiplier of every channel count.

    Returns:
        A `localgrad.Network` with 4 units, one per AL component.

    Raises:
        ValueError: for a non-image input shape.
    """
    shape = image_shape(input_shape, "cnn_al")
    units = []
    for index, convs in enumerate(CNN_AL_LAYOUT):
        layers = [
            _conv(
                scale(filters, width),
                strides,
                activation=ACTIVATION,
                name=f"conv{i + 1}",
            )
            for i, (filters, strides) in enumerate(convs)
        ]
        units.append(keras.Sequential(layers, name=unit_name(index)))
    classifier = keras.Sequential(
        [
            keras.layers.Flatten(name="flatten"),
            keras.layers.Dense(num_classes, name="logits"),
        ],
        name="classifier",
    )
    return Network(
        units, classifier, shape, architecture="cnn_al", name="cnn_al"
    )


def build_vgg_al(
    input_shape: Sequence[int], num_classes: int, width: float = 1.0
) -> Network:
    """Builds VGG_AL: 6 conv-BN-ELU layers and 2 Dense layers in 4 units.

    Units: [conv 128, conv 256, pool], [conv 256, conv 512, pool], [conv
    512, pool, conv 512, pool], [flatten, Dense 1024, Dense 1024] (every
    count times `width`). The classifier (used by backprop and DGL, not by
    AL) is Dense(n).

    Example:

    ```python
    net = build_vgg_al((32, 32, 3), 10, width=0.25)
    net.unit_output_shapes
    # [(16, 16, 64), (8, 8, 128), (2, 2, 128), (256,)]
    ```

    Args:
        input_shape: `(height, width, channels)` of one image.
        num_classes: Number of classes n (logits).
        width: Multiplier of every channel and hidden count.

    Returns:
        A `localgrad.Network` with 4 units, one per AL component.

    Raises:
        ValueError: for a non-image input shape.
    """
    shape = image_shape(input_shape, "vgg_al")
    units = []
    for index, layout in enumerate(VGG_AL_LAYOUT):
        layers = []
        for entry in layout.split():
            count = len(layers)
            if entry == "M":
                layers.append(
                    keras.layers.MaxPooling2D(
                        2, 2, padding="same", name=f"pool{count}"
                    )
                )
            elif entry == "F":
                layers.append(keras.layers.Flatten(name="flatten"))
            elif entry.startswith("D"):
                layers.append(
                    keras.layers.Dense(
                        scale(int(entry[1:]), width),
                        activation=ACTIVATION,
                        kernel_initializer="he_normal",
                        name=f"dense{count}",
                    )
                )
            else:
                layers += [
                    _conv(
                        scale(int(entry), width),
                        use_bias=False,
                        name=f"conv{count}",
                    ),
                    batch_norm(f"bn{count}"),
                    keras.layers.Activation(ACTIVATION, name=f"elu{count}"),
                ]
        units.append(keras.Sequential(layers, name=unit_name(index)))
    classifier = keras.layers.Dense(num_classes, name="classifier")
    return Network(
        units, classifier, shape, architecture="vgg_al", name="vgg_al"
    )
