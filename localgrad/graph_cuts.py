"""Where a Keras functional model can be cut into units.

A *cut point* is a layer whose output alone carries everything the rest of
the graph needs: no other tensor computed before it is used after it. The
stretch of graph between two consecutive cut points is a unit; cutting there
hands one tensor from block to block, as a greedy step needs. Inside a skip
connection there is no cut point (the shortcut crosses it).

The graph is read with public Keras APIs only: `model.operations` (in
topological order) and each operation's `input` and `output` tensors; units
are `keras.Model(cut_tensor, next_cut_tensor)` sub-models sharing the
original layers and weights.
"""

import dataclasses
import difflib
from collections.abc import Sequence

import keras

from localgrad.errors import UserError


@dataclasses.dataclass(frozen=True)
class CutPoint:
    """A layer after which a unit may end.

    Attributes:
        name: The layer's name.
        position: Its index among the model's operations (topological
            order, input layers left out).
        tensor: Its output, the symbolic tensor a cut hands on.
    """

    name: str
    position: int
    tensor: keras.KerasTensor


def find_cut_points(model: keras.Model) -> list[CutPoint]:
    """Every cut point of a one-input, one-output functional model, in order.

    The output layer is not a cut point (something must be left for the
    classifier).

    Example:

    ```python
    base = keras.applications.ResNet50(weights=None, input_shape=(32, 32, 3))
    [p.name for p in find_cut_points(base)][5:8]
    # ['pool1_pool', 'conv2_block1_add', 'conv2_block1_out']
    ```

    Args:
        model: A Keras functional model (`keras.Model(inputs, outputs)`
            or a `keras.applications` model).

    Returns:
        The `CutPoint`s, first to last.

    Raises:
        ValueError: for a Sequential or subclassed model, several inputs or
            outputs, or a layer used more than once in the graph.
    """
    operations, model_input, model_output = _graph(model)
    producer = {id(model_input): -1}
    last_use = {id(model_input): -1}
    for position, operation in enumerate(operations):
        for tensor in _flat(operation.input):
            if producer.get(id(tensor), position) >= position:
                raise UserError(
                    f"Layer {operation.name!r} of model {model.name!r} reads "
                    "a tensor that no layer of this graph outputs on its "
                    "first call: a layer before it is called more than once "
                    "(a shared layer) or was first called in another model. "
                    "from_functional needs every layer called once, in this "
                    "model; rebuild the model with separate layers."
                )
            last_use[id(tensor)] = position
        for tensor in _flat(operation.output):
            producer[id(tensor)] = position
            last_use[id(tensor)] = position
    if id(model_output) not in producer:
        raise UserError(
            f"The output of model {model.name!r} is not computed by its "
            "operations; from_functional needs a model whose layers are "
            "called once, in this model."
        )
    last_use[id(model_output)] = len(operations)
    points = []
    open_tensors = {id(model_input)} - _used_up(last_use, -1)
    for position, operation in enumerate(operations):
        outputs = _flat(operation.output)
        open_tensors |= {id(t) for t in outputs}
        open_tensors -= _used_up(last_use, position)
        if (
            len(outputs) == 1
            and open_tensors == {id(outputs[0])}
            and outputs[0] is not model_output
        ):
            points.append(CutPoint(operation.name, position, outputs[0]))
    return points


def split(
    model: keras.Model,
    cut_at: Sequence[str] | None = None,
    classifier_from: str | None = None,
) -> tuple[list[keras.Model], keras.Model]:
    """Cuts a functional model into units and a classifier.

    The classifier starts after the last cut point whose output has the
    rank of the model's input (for an image model: the global pooling and
    the dense layers; for an MLP: the last Dense layer), or at the layer
    `classifier_from`. The units end at the cut points `cut_at`, or, by
    default, at every cut point before the classifier (the finest units).

    Example:

    ```python
    units, classifier = split(base, cut_at=["conv3_block4_out"])
    len(units)  # 2
    ```

    Args:
        model: A one-input, one-output functional model.
        cut_at: Names of the cut points after which units end, in order.
        classifier_from: Name of the classifier's first layer; its input
            must be a cut point.

    Returns:
        `(units, classifier)`: functional sub-models that share the model's
        layers and weights, each unit named after its last layer.

    Raises:
        ValueError: for a name that is not a cut point (the message lists
            the valid cut points around it) or a model that cannot be cut.
    """
    points = find_cut_points(model)
    if not points:
        raise UserError(
            f"Model {model.name!r} has no cut point: every layer before its "
            "output sits inside a skip connection, so it is a single unit. "
            "Wrap it with localgrad.Network(units=[model_body], ...) instead."
        )
    operations, model_input, model_output = _graph(model)
    if classifier_from is None:
        rank = len(model_input.shape)
        same_rank = [p for p in points if len(p.tensor.shape) == rank]
        last = (same_rank or points)[-1]
    else:
        last = _classifier_cut(classifier_from, operations, points)
    candidates = [p for p in points if p.position < last.position]
    if cut_at is None:
        chosen = candidates
    else:
        chosen = _chosen(list(cut_at), operations, points, candidates, last)
    ends = chosen + [last]
    starts = [model_input] + [p.tensor for p in chosen]
    units = [
        keras.Model(start, end.tensor, name=end.name)
        for start, end in zip(starts, ends)
    ]
    classifier = keras.Model(last.tensor, model_output, name="classifier")
    return units, classifier


def _graph(model):
    if isinstance(model, keras.Sequential):
        raise UserError(
            f"Model {model.name!r} is a keras.Sequential: wrap it with "
            "localgrad.Network.from_sequential(model) (every layer is a cut "
            "point of a Sequential)."
        )
    inputs = getattr(model, "inputs", None)
    outputs = getattr(model, "outputs", None)
    if not inputs or not outputs or not hasattr(model, "operations"):
        raise UserError(
            f"Model {model.name!r} is not a functional model (no symbolic "
            "inputs and outputs), so it has no graph to cut: build it as "
            "keras.Model(inputs, outputs), or give localgrad.Network its "
            "units directly."
        )
    if len(inputs) != 1 or len(outputs) != 1:
        raise UserError(
            f"Model {model.name!r} has {len(inputs)} inputs and "
            f"{len(outputs)} outputs; a localgrad Network has one input "
            "and one output (the logits). Wrap the part of the model with "
            "one input and one output, e.g. keras.Model(x, logits)."
        )
    operations = [
        op
        for op in model.operations
        if not isinstance(op, keras.layers.InputLayer)
    ]
    return operations, inputs[0], outputs[0]


def _flat(structure):
    return [t for t in keras.tree.flatten(structure) if t is not None]


def _used_up(last_use, position):
    return {key for key, last in last_use.items() if last == position}


def _classifier_cut(name, operations, points):
    by_name = {op.name: op for op in operations}
    if name not in by_name:
        raise UserError(
            f"classifier_from={name!r} is not a layer of the model"
            f"{_close_names(name, by_name)}."
        )
    inputs = _flat(by_name[name].input)
    found = [p for p in points if len(inputs) == 1 and p.tensor is inputs[0]]
    if not found:
        raise UserError(
            f"classifier_from={name!r} must be a layer whose only input is a "
            "cut point (the classifier takes one tensor); valid choices "
            "follow the cut points "
            f"{_neighbours(by_name[name], operations, points)}."
        )
    return found[0]


def _chosen(names, operations, points, candidates, last):
    by_point = {p.name: p for p in points}
    positions = {op.name: i for i, op in enumerate(operations)}
    chosen = []
    for name in names:
        if name not in positions:
            raise UserError(
                f"cut_at name {name!r} is not a layer of the model"
                f"{_close_names(name, by_point)}. "
                "Network.cut_points(model) lists every valid cut point."
            )
        if name not in by_point:
            around = _neighbours(
                operations[positions[name]], operations, points
            )
            raise UserError(
                f"cut_at name {name!r} is not a cut point: its output is "
                "not the only tensor the rest of the graph needs (it is "
                "inside a skip connection, or the layer has several "
                "outputs). The nearest valid cut points are "
                f"{around}."
            )
        if by_point[name] not in candidates:
            raise UserError(
                f"cut_at name {name!r} is at or after the start of the "
                f"classifier (which follows {last.name!r}); choose cut "
                "points before it, or move the classifier with "
                "classifier_from=..."
            )
        chosen.append(by_point[name])
    if [p.position for p in chosen] != sorted({p.position for p in chosen}):
        raise UserError(
            f"cut_at={names} must list distinct cut points in the order "
            f"they appear in the model: {sorted(names, key=positions.get)}."
        )
    return chosen


def _neighbours(operation, operations, points):
    position = operations.index(operation)
    before = [p.name for p in points if p.position < position][-1:]
    after = [p.name for p in points if p.position > position][:1]
    listed = [f"{n!r} (before)" for n in before]
    listed += [f"{n!r} (after)" for n in after]
    return " and ".join(listed) or "none"


def _close_names(name, names):
    close = difflib.get_close_matches(name, list(names), n=3)
    if not close:
        return ""
    return f"; did you mean {', '.join(repr(c) for c in close)}?"
