"""Per-unit cost of a network: output shape, parameters, FLOPs, activations.

Each unit is traced alone in a `tf.function` (training mode), forward and
backward, once at a batch of 1 and once at a batch of 2, every shape
static; the ops of the two graphs are walked and the per-example cost is
the difference of the two counts (what does not depend on the batch, such
as the weights, cancels):

- FLOPs are 2 × the multiply-accumulates of the `Conv2D`,
  `DepthwiseConv2dNative`, `MatMul`, `BatchMatMulV2` and `BatchMatMulV3`
  ops: convolutions (separable ones are a depthwise and a pointwise one),
  and Dense layers, also on N-D inputs (Keras flattens them into a
  `MatMul`). Batch normalization, layer normalization, activations,
  pooling, additions and multiplications (a squeeze-and-excite's scaling)
  are not counted. A unit with an op that does multiply-accumulates of
  another kind (`Einsum`, 3-D or transposed convolutions) is refused,
  naming the op.
- Activation bytes are what a training step keeps for the unit's backward
  pass: every forward tensor that a backward op reads (the gradient of the
  unit's output with respect to its input and weights), counted once
  (through ops that only alias their input, such as `Identity` or
  `Reshape`, to the tensor they alias). The unit's input is not counted:
  it belongs to the unit before.

The classifier is not profiled: the rows cover the units only.
"""

import dataclasses
import math
from collections.abc import Sequence

import tensorflow as tf

from localgrad.errors import UserError
from localgrad.network import Network

MATMUL_OPS = ("MatMul", "BatchMatMulV2", "BatchMatMulV3")
CONV_OPS = ("Conv2D", "DepthwiseConv2dNative")
# Ops that multiply-accumulate in a way `_macs` does not count.
UNCOUNTED_OPS = (
    "Einsum",
    "Conv3D",
    "Conv2DBackpropInput",
    "Conv3DBackpropInputV2",
    "DepthwiseConv2dNativeBackpropInput",
)
ALIAS_OPS = (
    "Placeholder",
    "Identity",
    "IdentityN",
    "Reshape",
    "Squeeze",
    "ExpandDims",
    "StopGradient",
)


@dataclasses.dataclass(frozen=True)
class UnitProfile:
    """The cost of one unit for a batch of `batch_size` examples.

    Attributes:
        name: The unit's layer name.
        output_shape: Shape of the unit's output, without the batch dimension.
        params: Number of weights (trainable and not) of the unit.
        flops: Forward FLOPs (2 × multiply-accumulates) for the batch.
        activation_bytes: Bytes of the forward tensors kept for the backward
            pass, for the batch.
    """

    name: str
    output_shape: tuple
    params: int
    flops: int
    activation_bytes: int


def profile(
    network: Network,
    input_shape: Sequence[int] | None = None,
    batch_size: int = 1,
) -> list[UnitProfile]:
    """Measures every unit of `network`: shape, parameters, FLOPs, memory.

    See the module docstring for what is counted. The classifier is excluded.

    Example:

    ```python
    net = localgrad.models.build("vgg19", (32, 32, 3), 10)
    rows = localgrad.profile(net, batch_size=128)
    print(localgrad.format_profile(rows))
    ```

    Args:
        network: The network to profile.
        input_shape: Shape of one example; defaults to
            `network.example_shape`.
        batch_size: Number of examples the FLOPs and activation bytes are
            counted for.

    Returns:
        One `UnitProfile` per unit, in order.

    Raises:
        UserError: for a batch size under 1, or a unit whose traced tensors
            have unknown dimensions or whose multiply-accumulates it cannot
            count, naming the op.
    """
    if int(batch_size) != batch_size or batch_size < 1:
        raise UserError(
            f"batch_size must be a positive integer; got {batch_size!r}."
        )
    batch_size = int(batch_size)
    shape = tuple(network.example_shape if input_shape is None else input_shape)
    profiles = []
    for unit in network.units:
        (macs_1, bytes_1), output_shape = _costs(unit, shape, batch=1)
        (macs_2, bytes_2), _ = _costs(unit, shape, batch=2)
        macs, activation_bytes = macs_2 - macs_1, bytes_2 - bytes_1
        profiles.append(
            UnitProfile(
                name=unit.name,
                output_shape=output_shape,
                params=int(unit.count_params()),
                flops=2 * (macs * batch_size + macs_1 - macs),
                activation_bytes=activation_bytes * batch_size,
            )
        )
        shape = output_shape
    return profiles


def format_profile(profiles: Sequence[UnitProfile]) -> str:
    """Renders profiles as a text table with a total row.

    Example:

    ```python
    print(format_profile(localgrad.profile(net, batch_size=128)))
    # unit     output shape   params  MFLOPs  activations
    # unit_00  (32, 32, 64)    1,984   226.5     24.0 MiB
    # ...
    ```

    Args:
        profiles: The rows returned by `profile`.

    Returns:
        The table, one line per unit plus a header and a total line.
    """
    header = ("unit", "output shape", "params", "MFLOPs", "activations")
    rows = [
        (
            row.name,
            str(row.output_shape),
            f"{row.params:,}",
            f"{row.flops / 1e6:,.1f}",
            _format_bytes(row.activation_bytes),
        )
        for row in profiles
    ]
    rows.append(
        (
            "total",
            "",
            f"{sum(row.params for row in profiles):,}",
            f"{sum(row.flops for row in profiles) / 1e6:,.1f}",
            _format_bytes(sum(row.activation_bytes for row in profiles)),
        )
    )
    table = [header] + rows
    widths = [max(len(line[i]) for line in table) for i in range(len(header))]
    lines = []
    for line in table:
        cells = [line[0].ljust(widths[0]), line[1].ljust(widths[1])]
        cells += [cell.rjust(w) for cell, w in zip(line[2:], widths[2:])]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def _format_bytes(count):
    """`count` bytes in B, KiB, MiB or GiB, whichever reads best."""
    for unit in ("B", "KiB", "MiB"):
        if count < 1024:
            return f"{count:,.1f} {unit}" if unit != "B" else f"{count} B"
        count /= 1024
    return f"{count:,.1f} GiB"


def _costs(unit, input_shape, batch):
    """(multiply-accumulates, saved bytes) of `unit` at `batch`; its shape.

    Traces the unit forward and backward on a batch of that static size;
    the forward pass's ops are created first.
    """
    spec = tf.TensorSpec((batch,) + tuple(input_shape), tf.float32)
    forward_ops = []

    def forward_and_backward(inputs):
        with tf.GradientTape() as tape:
            tape.watch(inputs)
            outputs = unit(inputs, training=True)
        forward_ops.append(
            len(tf.compat.v1.get_default_graph().get_operations())
        )
        tape.gradient(outputs, [inputs] + unit.trainable_variables)
        return outputs

    concrete = tf.function(forward_and_backward).get_concrete_function(spec)
    output = tf.nest.flatten(concrete.structured_outputs)[0]
    operations = concrete.graph.get_operations()
    forward = operations[: forward_ops[0]]
    backward = operations[forward_ops[0] :]
    macs = sum(_macs(op, unit.name) for op in forward)
    forward_tensors = {t.ref() for op in forward for t in op.outputs}
    saved = {
        _unaliased(tensor).ref()
        for op in backward
        for tensor in op.inputs
        if tensor.ref() in forward_tensors
    }
    saved_bytes = 0
    for ref in saved:
        tensor = ref.deref()
        if tensor.op.type in ALIAS_OPS or tensor.dtype in (
            tf.resource,
            tf.variant,
            tf.string,
        ):
            continue
        saved_bytes += _size(tensor, unit.name) * tensor.dtype.size
    return (macs, saved_bytes), tuple(output.shape[1:])


def _unaliased(tensor):
    """The tensor an alias op (Identity, Reshape, ...) passes through."""
    while tensor.op.type in ALIAS_OPS and tensor.op.inputs:
        tensor = tensor.op.inputs[0]
    return tensor


def _size(tensor, unit_name):
    """Number of elements of `tensor`, whose shape must be known."""
    dims = tensor.shape.as_list() if tensor.shape.rank is not None else None
    if dims is None or any(dim is None for dim in dims):
        raise UserError(
            f"Cannot profile unit {unit_name!r}: its tensor {tensor.name} "
            f"has shape {tensor.shape}, not known when the unit is traced. "
            "Give the network a fully known input shape, or choose its "
            "boundaries yourself (balance=None)."
        )
    return math.prod(dims)


def _macs(op, unit_name):
    """Multiply-accumulates of one op (0 for ops that do none we count)."""
    if op.type in UNCOUNTED_OPS:
        raise UserError(
            f"Cannot profile unit {unit_name!r}: its op {op.name} "
            f"({op.type}) does multiply-accumulates that localgrad.profile "
            f"does not count (it counts {', '.join(CONV_OPS + MATMUL_OPS)}). "
            "Choose the boundaries yourself (balance=None, boundaries=...)."
        )
    if op.type == "Conv2D":
        inner = math.prod(op.inputs[1].shape.as_list()[:3])
    elif op.type == "DepthwiseConv2dNative":
        inner = math.prod(op.inputs[1].shape.as_list()[:2])
    elif op.type == "MatMul":
        left = op.inputs[0].shape.as_list()
        inner = left[0] if op.get_attr("transpose_a") else left[1]
    elif op.type in MATMUL_OPS:
        left = op.inputs[0].shape.as_list()
        inner = left[-2] if op.get_attr("adj_x") else left[-1]
    else:
        return 0
    if inner is None:
        raise UserError(
            f"Cannot profile unit {unit_name!r}: its op {op.name} "
            f"({op.type}) has an input of shape {op.inputs[0].shape}, not "
            "known when the unit is traced. Choose the boundaries yourself "
            "(balance=None, boundaries=...)."
        )
    return _size(op.outputs[0], unit_name) * inner
