"""Per-unit cost of a network: output shape, parameters, FLOPs, activations.

Each unit is traced alone in a `tf.function` (training mode, batch dimension
left unknown) and the ops of the traced graph are walked:

- FLOPs are 2 × the multiply-accumulates of the `Conv2D`,
  `DepthwiseConv2dNative`, `MatMul`, `BatchMatMulV2` and `BatchMatMulV3` ops.
  Batch normalization, activations, pooling and additions are not counted.
- Activation bytes are what a training step keeps for the unit's backward
  pass: the unit is traced forward and backward (the gradient of its output
  with respect to its input and weights), and every per-example tensor of
  the forward pass that a backward op reads is counted once (through ops
  that only alias their input, such as `Identity` or `Reshape`, to the
  tensor they alias). The unit's input is not counted: it belongs to the
  unit before. The count is exactly linear in the batch size.

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
        ValueError: for a batch size under 1, or a unit whose traced tensors
            have unknown dimensions besides the batch.
    """
    if int(batch_size) != batch_size or batch_size < 1:
        raise UserError(
            f"batch_size must be a positive integer; got {batch_size!r}."
        )
    batch_size = int(batch_size)
    shape = tuple(network.example_shape if input_shape is None else input_shape)
    profiles = []
    for unit in network.units:
        graph, output_shape, forward_op_count = _trace(unit, shape)
        (macs, fixed_macs), activation_bytes = _count(
            graph, forward_op_count, unit.name
        )
        profiles.append(
            UnitProfile(
                name=unit.name,
                output_shape=output_shape,
                params=int(unit.count_params()),
                flops=2 * (macs * batch_size + fixed_macs),
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


def _trace(unit, input_shape):
    """Traces `unit` forward and backward on a batch of unknown size.

    Returns the graph, the output shape and how many of the graph's ops
    belong to the forward pass (they are created first).
    """
    spec = tf.TensorSpec((None,) + tuple(input_shape), tf.float32)
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
    return concrete.graph, tuple(output.shape[1:]), forward_ops[0]


def _count(graph, forward_op_count, unit_name):
    """Multiply-accumulates (per example, fixed) and saved bytes."""
    operations = graph.get_operations()
    forward, backward = (
        operations[:forward_op_count],
        operations[forward_op_count:],
    )
    macs = [0, 0]
    for op in forward:
        if op.type in CONV_OPS or op.type in MATMUL_OPS:
            macs = [a + b for a, b in zip(macs, _macs(op, unit_name))]
    forward_tensors = {t.ref() for op in forward for t in op.outputs}
    saved = {
        _unaliased(tensor).ref()
        for op in backward
        for tensor in op.inputs
        if tensor.ref() in forward_tensors
    }
    activation_bytes = 0
    for ref in saved:
        tensor = ref.deref()
        if tensor.op.type in ALIAS_OPS or tensor.dtype in (
            tf.resource,
            tf.variant,
            tf.string,
        ):
            continue
        shape = tensor.shape
        if shape.rank is None or shape.rank == 0 or shape[0] is not None:
            continue
        activation_bytes += (
            _per_example_size(tensor, unit_name) * tensor.dtype.size
        )
    return macs, activation_bytes


def _unaliased(tensor):
    """The tensor an alias op (Identity, Reshape, ...) passes through."""
    while tensor.op.type in ALIAS_OPS and tensor.op.inputs:
        tensor = tensor.op.inputs[0]
    return tensor


def _per_example_size(tensor, unit_name):
    """Number of elements of `tensor` per example (batch dimension = 1)."""
    dims = tensor.shape.as_list()[1:]
    if any(dim is None for dim in dims):
        raise UserError(
            f"Cannot profile unit {unit_name!r}: its tensor {tensor.name} has "
            f"shape {tensor.shape}, with unknown dimensions besides the "
            "batch. Give the network a fully known input shape."
        )
    return math.prod(dims)


def _macs(op, unit_name):
    """Multiply-accumulates of one conv or matmul op: (per example, fixed)."""
    output = op.outputs[0]
    if op.type == "Conv2D":
        kernel_h, kernel_w, in_channels = op.inputs[1].shape.as_list()[:3]
        inner = kernel_h * kernel_w * in_channels
    elif op.type == "DepthwiseConv2dNative":
        kernel_h, kernel_w = op.inputs[1].shape.as_list()[:2]
        inner = kernel_h * kernel_w
    elif op.type == "MatMul":
        left = op.inputs[0].shape.as_list()
        inner = left[0] if op.get_attr("transpose_a") else left[1]
    else:
        left = op.inputs[0].shape.as_list()
        inner = left[-2] if op.get_attr("adj_x") else left[-1]
    if output.shape.rank and output.shape[0] is None:
        return _per_example_size(output, unit_name) * inner, 0
    if inner is None:  # A contraction over the batch, e.g. x^T x.
        return math.prod(output.shape.as_list()), 0
    return 0, math.prod(output.shape.as_list()) * inner  # Weights only.
