"""Helpers every architecture builder shares: width scaling, input checks."""

from collections.abc import Sequence

from localgrad.errors import UserError

SMALL_INPUT_SIDE = 64


def scale(count: int, width: float) -> int:
    """`int(count * width)`, at least 1: a channel or hidden count at `width`.

    Example:

    ```python
    scale(64, 0.125)  # 8
    scale(64, 0.001)  # 1
    ```
    """
    return max(1, int(count * width))


def image_shape(input_shape: Sequence[int], name: str) -> tuple:
    """Checks that `input_shape` is `(height, width, channels)`.

    Returns:
        The shape as a tuple of ints.

    Raises:
        ValueError: if the shape is not 3-D.
    """
    shape = tuple(input_shape)
    if len(shape) != 3:
        raise UserError(
            f"{name} needs images of shape (height, width, channels); got "
            f"input_shape={shape}. For grey images add a channel axis, e.g. "
            "(28, 28, 1)."
        )
    return shape


def is_small_input(shape: Sequence[int]) -> bool:
    """Whether an image is CIFAR-sized (shorter side under 64 pixels).

    Small inputs get the CIFAR stem and classifier; larger ones the ImageNet
    ones.
    """
    return min(shape[0], shape[1]) < SMALL_INPUT_SIDE


def unit_name(index: int) -> str:
    """The name of unit `index`: `unit_00`, `unit_01`, ..."""
    return f"unit_{index:02d}"
