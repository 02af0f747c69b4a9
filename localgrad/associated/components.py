"""The label-side layers of Associated Learning's components.

Component i (0-based here) of an `AssociatedModel` adds, to its units f_i,
an encoder g_i: Dense(n, sigmoid) on t_{i-1}; a bridge b_i: flatten,
Dense(5n, sigmoid), Dense(n, sigmoid) on f_i's output; and a decoder h_i:
Dense(n, sigmoid), the first one Dense(classes, sigmoid). These are the
official code's layers (methods.md §7).
"""

from collections.abc import Sequence

import keras
import numpy as np

from localgrad.errors import UserError

# The bridge's hidden width, in multiples of the label width n.
BRIDGE_EXPANSION = 5
# The official code initializes g_i, b_i and h_i He-normal: Keras' default
# Glorot-uniform gives g_1 (10 inputs, n outputs) weights ~5.6x smaller, so
# that t_1 starts nearly the same for every class.
INITIALIZER = "he_normal"


def check_label_width(label_width) -> int:
    """The label width n as an int.

    Raises:
        ValueError: unless n is an integer >= 1.
    """
    if (
        isinstance(label_width, bool)
        or not isinstance(label_width, (int, np.integer))
        or label_width < 1
    ):
        raise UserError(
            f"label_width={label_width!r} must be an integer >= 1: the "
            "width n of the label codes t_i (the paper uses 300 for VGG "
            "and ResNet, 1024 for the MNIST MLP)."
        )
    return int(label_width)


def build_encoder(index: int, input_width: int, label_width: int):
    """g_i: Dense(n, sigmoid) on t_{i-1} (of width `input_width`)."""
    encoder = _sigmoid_dense(label_width, name=f"encoder_{index}")
    encoder.build((None, input_width))
    return encoder


def build_decoder(index: int, label_width: int, output_width: int):
    """h_i: Dense(width of t_{i-1}, sigmoid) on t_i (of width n)."""
    decoder = _sigmoid_dense(output_width, name=f"decoder_{index}")
    decoder.build((None, label_width))
    return decoder


def build_bridge(index: int, feature_shape: Sequence, label_width: int):
    """b_i: flatten, Dense(5n, sigmoid), Dense(n, sigmoid).

    Example:

    ```python
    bridge = build_bridge(0, (14, 14, 32), label_width=300)
    bridge(features).shape  # (batch, 300)
    ```

    Args:
        index: The component's index i.
        feature_shape: The shape of f_i's output, without the batch.
        label_width: n.

    Raises:
        ValueError: if the output has no fixed size to flatten.
    """
    shape = tuple(feature_shape)
    if not shape or any(d is None for d in shape):
        raise UserError(
            f"Block {index} outputs features of shape {shape}, which cannot "
            "be flattened to a bridge: a bridge needs a fixed, non-empty "
            "feature shape (no None dimension). Give the network a fixed "
            "input size, or move the boundary to a unit whose output has "
            "one."
        )
    bridge = keras.Sequential(
        [
            keras.layers.Flatten(),
            _sigmoid_dense(BRIDGE_EXPANSION * label_width),
            _sigmoid_dense(label_width),
        ],
        name=f"bridge_{index}",
    )
    bridge.build((None,) + shape)
    return bridge


def _sigmoid_dense(units, name=None):
    """Dense(units, sigmoid), started as in the official code: every
    layer of the label side and of the bridges is one."""
    return keras.layers.Dense(
        units, activation="sigmoid", kernel_initializer=INITIALIZER, name=name
    )


def decode(decoders: Sequence, codes, training=False):
    """h_1(h_2(…h_k(codes))): the decoders applied deepest first.

    Example:

    ```python
    scores = decode(model.decoders[: k + 1], model.bridges[k](features))
    ```

    Args:
        decoders: h_1..h_k (the first maps to class scores).
        codes: A label code of width n (b_k(s_k) or t_k).
        training: Whether the decoders run in training mode.

    Returns:
        The class scores, `(batch, classes)`, each in (0, 1).
    """
    for decoder in reversed(list(decoders)):
        codes = decoder(codes, training=training)
    return codes
