"""The multilayer perceptron: 4 hidden Dense-BN-ReLU units and a Dense."""

from collections.abc import Sequence

import keras

from localgrad.models.common import scale, unit_name
from localgrad.models.units import DenseBNReLU
from localgrad.network import Network

MLP_HIDDEN = 1024
MLP_DEPTH = 4


def build_mlp(
    input_shape: Sequence[int], num_classes: int, width: float = 1.0
) -> Network:
    """Builds an MLP: 4 units of `int(1024 * width)` features, then Dense(n).

    Each unit is Dense (no bias) + batch normalization + ReLU; the first one
    flattens its input, so images of any shape work.

    Example:

    ```python
    net = build_mlp((28, 28, 1), 10, width=0.25)
    net.unit_output_shapes  # [(256,), (256,), (256,), (256,)]
    ```

    Args:
        input_shape: Shape of one example, without the batch dimension.
        num_classes: Number of classes n (logits).
        width: Multiplier of the hidden size.

    Returns:
        A `localgrad.Network` with 4 units.
    """
    hidden = scale(MLP_HIDDEN, width)
    units = [
        DenseBNReLU(hidden, flatten=index == 0, name=unit_name(index))
        for index in range(MLP_DEPTH)
    ]
    classifier = keras.layers.Dense(num_classes, name="classifier")
    return Network(
        units, classifier, tuple(input_shape), architecture="mlp", name="mlp"
    )
