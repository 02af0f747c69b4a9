"""The transport term of a block: how far the block moves its input.

Karkar et al.'s kinetic-energy regularizer (methods.md §4) needs, for each
block, a scalar that measures the displacement the block applies to its
input. `run_block_with_transport` runs a block's units and returns that
scalar beside the block's output; `transport_rule` says, from the units and
shapes alone, which of the three rules a block follows (or raises):

- `"residual"`: every unit is a residual unit. The term is the sum over
  the units of mean(g_m(x_m)²), the mean over the batch and every feature
  position of the unit's residual branch.
- `"custom"`: the user gave a transport function `fn(inputs, outputs)`;
  it is used for every block that is not all residual.
- `"displacement"`: the block's output has its input's shape. The block
  is one map T and the term is mean((T(x) − x)²), again a mean over the
  batch and every feature position.

Any other block (not all residual, shape changed, no transport function)
is an error that names the block and says why.

A residual unit opts in with two things: the class attribute
`is_residual = True`, and `call(inputs, training=None,
return_residual=False)` that returns the pair `(outputs, g)` when
`return_residual` is `True`, `g` being the residual branch's output (the
ResNet units of `localgrad.models` do this):

```python
class MyResidual(keras.layers.Layer):
    is_residual = True

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.branch = keras.layers.Dense(8)

    def call(self, inputs, training=None, return_residual=False):
        residual = self.branch(inputs)
        outputs = inputs + residual
        return (outputs, residual) if return_residual else outputs
```
"""

from collections.abc import Callable, Sequence

import keras

from localgrad.errors import UserError

TransportFn = Callable[..., object]
RULES = ("residual", "custom", "displacement")


def is_residual_unit(unit: keras.layers.Layer) -> bool:
    """Whether `unit` exposes its residual branch (`is_residual = True`)."""
    return bool(getattr(unit, "is_residual", False))


def transport_rule(
    units: Sequence[keras.layers.Layer],
    input_shape: Sequence[int | None],
    output_shape: Sequence[int | None],
    transport_fn: TransportFn | None = None,
    block_name: str = "the block",
) -> str:
    """The rule of a block's transport term (one of `RULES`).

    Example:

    ```python
    net = localgrad.models.build("vgg11", (28, 28, 1), 10, width=0.25)
    net.unit_output_shapes[5:7]  # [(2, 2, 128), (2, 2, 128)]
    transport_rule(net.units[6:7], (2, 2, 128), (2, 2, 128))  # displacement
    transport_rule(net.units[3:4], (7, 7, 64), (4, 4, 64))
    # ValueError: ... changes the shape (7, 7, 64) -> (4, 4, 64) ...
    ```

    Args:
        units: The block's units, in order.
        input_shape: Shape of one input example (without the batch axis).
        output_shape: Shape of one output example.
        transport_fn: The user's transport function, if any.
        block_name: How error messages name the block, e.g.
            `"block 2 (units 4..5)"`.

    Returns:
        One of `RULES`.

    Raises:
        ValueError: for a block with no units, or a block that is not all
            residual, changes its input's shape and has no transport
            function.
    """
    units = list(units)
    if not units:
        raise UserError(f"{block_name} has no units: nothing to transport.")
    if all(is_residual_unit(unit) for unit in units):
        return "residual"
    if transport_fn is not None:
        return "custom"
    if tuple(input_shape) != tuple(output_shape):
        plain = [u.name for u in units if not is_residual_unit(u)]
        raise UserError(
            f"Transport regularization cannot measure {block_name}: its "
            f"units {plain} are not residual (no `is_residual = True` with "
            "`call(..., return_residual=True)` returning (outputs, g)), and "
            f"the block changes the shape {tuple(input_shape)} -> "
            f"{tuple(output_shape)}, so T(x) - x is undefined. Make the "
            "units residual, move the boundary so that the block keeps "
            "its shape, or pass Transport(transport_fn=fn) with "
            "fn(inputs, outputs) -> scalar."
        )
    return "displacement"


def mean_square(values) -> object:
    """mean(values²) over every axis, computed in float32."""
    values = keras.ops.cast(values, "float32")
    return keras.ops.mean(keras.ops.square(values))


def run_block_with_transport(
    units: Sequence[keras.layers.Layer],
    inputs,
    training=None,
    transport_fn: TransportFn | None = None,
    block_name: str = "the block",
) -> tuple:
    """Runs a block's units on `inputs`; returns `(outputs, term)`.

    A pure function of its tensors (apart from the units' own BatchNorm
    updates in training mode): the output is what the units compute
    anyway, and the term is the block's transport term (see the module
    docstring). Give it `tf.stop_gradient(inputs)` in a training step, so
    that the gradient of the term reaches only this block's units.

    Example:

    ```python
    net = localgrad.models.build("resnet18", (28, 28, 1), 10, width=0.25)
    outputs, term = run_block_with_transport(net.units[0:2], images)
    loss = cross_entropy + term / (2 * tau)
    ```

    Args:
        units: The block's units, in order.
        inputs: The block's input batch.
        training: Passed to every unit.
        transport_fn: `fn(inputs, outputs) -> scalar`, used for blocks that
            are not all residual (see `transport_rule`).
        block_name: How error messages name the block.

    Returns:
        `(outputs, term)`: the block's output and a float32 scalar.

    Raises:
        ValueError: as `transport_rule`, or if a residual unit does not
            return an `(outputs, g)` pair with `return_residual=True`.
    """
    units = list(units)
    if units and all(is_residual_unit(unit) for unit in units):
        return _run_residual_units(units, inputs, training, block_name)
    outputs = inputs
    for unit in units:
        outputs = unit(outputs, training=training)
    rule = transport_rule(
        units, inputs.shape[1:], outputs.shape[1:], transport_fn, block_name
    )
    if rule == "custom":
        term = keras.ops.cast(transport_fn(inputs, outputs), "float32")
        return outputs, term
    return outputs, mean_square(outputs - inputs)


def _run_residual_units(units, inputs, training, block_name):
    features, term = inputs, 0.0
    for unit in units:
        result = unit(features, training=training, return_residual=True)
        if not (isinstance(result, (tuple, list)) and len(result) == 2):
            raise UserError(
                f"Unit {unit.name!r} of {block_name} says is_residual = "
                "True but call(..., return_residual=True) did not return "
                "the pair (outputs, g)."
            )
        features, residual = result
        term = term + mean_square(residual)
    return features, term
