"""Auxiliary heads by name: `build(name, input_shape, num_classes)`."""

from collections.abc import Callable, Sequence

import keras

from localgrad.errors import UserError
from localgrad.heads.cnn1 import CNN1Head
from localgrad.heads.dgl import CNNHead, MLPHead, MLPSRHead
from localgrad.heads.light import LightHead
from localgrad.heads.linear import LinearHead
from localgrad.heads.predsim import PredSimHead


def _without_width(head_class):
    """Adapts a head class that has no width_mult to the one signature."""

    def factory(input_shape, num_classes, width_mult, light_reduction, **kw):
        del width_mult, light_reduction  # Nothing of theirs to scale.
        return head_class(input_shape, num_classes, **kw)

    return factory


def _predsim(input_shape, num_classes, width_mult, light_reduction, **kw):
    del light_reduction  # Predsim has no 1x1 reduction.
    return PredSimHead(input_shape, num_classes, width_mult=width_mult, **kw)


def _light(depth):
    def factory(input_shape, num_classes, width_mult, light_reduction, **kw):
        return LightHead(
            input_shape,
            num_classes,
            depth=depth,
            width_mult=width_mult,
            reduction=light_reduction,
            **kw,
        )

    return factory


_FACTORIES: dict[str, Callable[..., keras.layers.Layer]] = {
    "mlp_sr": _without_width(MLPSRHead),
    "mlp": _without_width(MLPHead),
    "cnn": _without_width(CNNHead),
    "cnn1": _without_width(CNN1Head),
    "light1": _light(1),
    "light2": _light(2),
    "light3": _light(3),
    "light4": _light(4),
    "predsim": _predsim,
    "linear": _without_width(LinearHead),
}

HEAD_NAMES: tuple[str, ...] = tuple(_FACTORIES)


def build(
    name: str,
    input_shape: Sequence[int],
    num_classes: int,
    width_mult: float = 1.0,
    light_reduction: int = 4,
    layer_name: str | None = None,
    **kwargs,
) -> keras.layers.Layer:
    """Builds the auxiliary head called `name` for features of one shape.

    The head is built on `(None,) + input_shape`: its weights exist on
    return. Calling it on features `(batch,) + input_shape` gives logits
    `(batch, num_classes)`. A head with its own loss (`predsim`) also has a
    `local_loss` method; see the `localgrad.heads` docstring.

    Example:

    ```python
    head = localgrad.heads.build("mlp_sr", (16, 16, 64), num_classes=10)
    logits = head(np.zeros((4, 16, 16, 64)))  # (4, 10)
    ```

    Args:
        name: One of `HEAD_NAMES`: "mlp_sr", "mlp", "cnn", "cnn1",
            "light1" .. "light4", "predsim", "linear".
        input_shape: Shape of one example's features, without the batch
            dimension: `(H, W, C)`, or `(C,)` for flat features.
        num_classes: Number of classes n.
        width_mult: Scales the 512 channels of the light heads and the
            512-value limit of predsim's prediction branch; the other heads
            ignore it.
        light_reduction: P = C // light_reduction channels after the
            light heads' first 1x1 conv (the authors': 4, and 1 on
            ResNet-18/34, see `Network.light_head_reduction`); the other
            heads ignore it.
        layer_name: The Keras name of the layer (`name` is the head's
            kind); None for a unique default.
        **kwargs: Passed to the head layer: e.g. `dtype`, or
            `bn_momentum`, the momentum of its BatchNorm statistics (0.9
            by default, as the units').

    Returns:
        A built `keras.layers.Layer`.

    Raises:
        ValueError: for an unknown name (the message lists the known ones), or
            an input shape the head cannot take (the message names the head,
            the shape and a head that can).
    """
    if name not in _FACTORIES:
        raise UserError(
            f"Unknown head {name!r}; known heads: {', '.join(HEAD_NAMES)}."
        )
    if layer_name is not None:
        kwargs["name"] = layer_name
    return _FACTORIES[name](
        tuple(input_shape),
        num_classes,
        width_mult=width_mult,
        light_reduction=light_reduction,
        **kwargs,
    )
