"""Building the auxiliary heads of a GreedyModel from head specs."""

from collections.abc import Callable, Sequence

import keras

from localgrad import heads as heads_lib
from localgrad.errors import UserError

HeadSpec = str | keras.layers.Layer | Callable[..., keras.layers.Layer]


def build_heads(
    network,
    boundaries: Sequence[int],
    heads: HeadSpec | Sequence[HeadSpec],
    head_width: float = 1.0,
) -> list[keras.layers.Layer]:
    """One auxiliary head per boundary, checked against its feature map.

    Example:

    ```python
    build_heads(net, [2, 5], "mlp_sr")            # two mlp_sr heads
    build_heads(net, [2, 5], ["light2", "mlp"])  # one per boundary
    ```

    Args:
        network: The `localgrad.Network`.
        boundaries: The validated boundaries.
        heads: A head name, a Keras layer, a callable
            `(input_shape, num_classes) -> layer`, or a list of these, one
            per boundary.
        head_width: `width_mult` given to named heads (the network's
            `light_head_reduction` goes to named light heads).

    Returns:
        The heads, in block order.

    Raises:
        ValueError: for a wrong number of heads, one layer for several
            boundaries, or a head that does not fit its feature map.
    """
    if isinstance(heads, (list, tuple)):
        if len(heads) != len(boundaries):
            raise UserError(
                f"Got {len(heads)} heads for {len(boundaries)} boundaries: "
                "give one head per non-last block, or a single head spec "
                "for all of them."
            )
        specs = list(heads)
    elif isinstance(heads, keras.layers.Layer) and len(boundaries) > 1:
        raise UserError(
            "One head layer cannot serve several blocks; pass a list of "
            "layers, a head name, or a callable that makes a head."
        )
    else:
        specs = [heads] * len(boundaries)
    return [
        _build_head(
            spec,
            network.unit_output_shapes[boundary - 1],
            network.num_classes,
            head_width,
            network.light_head_reduction,
            boundary,
        )
        for boundary, spec in zip(boundaries, specs)
    ]


def _build_head(spec, shape, num_classes, head_width, reduction, boundary):
    where = f"the head after unit {boundary} (input shape {shape})"
    if isinstance(spec, str):
        return heads_lib.build(
            spec,
            shape,
            num_classes,
            width_mult=head_width,
            light_reduction=reduction,
        )
    head = (
        spec
        if isinstance(spec, keras.layers.Layer)
        else spec(shape, num_classes)
    )
    try:
        output = head(keras.KerasTensor((None,) + tuple(shape)))
    except Exception as error:
        raise UserError(
            f"{where} cannot take that feature map: {error}"
        ) from error
    if tuple(output.shape[1:]) != (num_classes,):
        raise UserError(
            f"{where} outputs shape {tuple(output.shape[1:])}; a head must "
            f"output logits of shape ({num_classes},)."
        )
    return head
