"""The stable name of every variable a checkpoint holds.

Keras names a variable by its path (`functional_3/dense_7/kernel`), whose
layer names are numbered as layers are created: two builds of one model
in one process differ. A checkpoint names a variable by where it sits
instead: the attributes and list indices that lead from the model to the
layer that owns it, then the name it was created with. An optimizer's
slot is named after the model variable it belongs to and its kind.

Example:

```python
names = layer_variable_names(model)
names[id(model.network.classifier.kernel)]  # "network/classifier/kernel"
slots = optimizer_variable_names(model.block_optimizers[0], model)
# {..: "network/units/0/layers/0/kernel/momentum", ..: "iteration", ...}
```
"""

import collections

import keras

from localgrad.blocks.training_state import optimizer_variables
from localgrad.errors import UserError


def layer_variable_names(root: keras.layers.Layer) -> dict[int, str]:
    """The structural name of every variable of `root`, by `id(variable)`.

    A layer's path is the chain of attribute names, list indices and dict
    keys that reaches it from `root` (`network/units/0`); a Keras model's
    layers reached no other way are `layers/<i>`. Attributes are read in
    this order: public ones (sorted by name), a model's `layers`, private
    ones (sorted by name); the first path reaching a shared layer is its
    path. A variable belongs to the deepest layer that holds it and is
    named `<layer path>/<variable.name>` (`network/units/0/layers/1/gamma`);
    when one layer holds several variables of one name, the second and
    later get `#1`, `#2`, ... in `weights` order.

    Example:

    ```python
    names = layer_variable_names(model)
    [names[id(v)] for v in model.weights]
    # ["network/units/0/kernel", "network/units/0/bias", ...]
    ```

    Args:
        root: The model (or layer) whose `weights` are named.

    Returns:
        `id(variable)` -> name, for every variable in `root.weights`.

    Raises:
        ValueError: if two variables would get the same name.
    """
    names = {}
    _name_layer(root, "", set(), names)
    _check_unique(names, root.weights)
    return names


def optimizer_variable_names(optimizer, model: keras.Model) -> dict[int, str]:
    """The structural name of every variable of `optimizer`, by id.

    Keras 3 has no public way to ask which model variable a slot (momentum,
    velocity) belongs to; it names a slot `<reference path>_<kind>`, with
    the reference variable's path's `/` replaced by `_`
    (`Optimizer.add_variable_from_reference`). A slot is matched to the
    model variable whose path is the longest such prefix of its name and
    named `<that variable's structural name>/<kind>`
    (`network/units/0/kernel/momentum`). Variables of no model variable
    (`iteration`, `learning_rate`, a `LossScaleOptimizer`'s scale) keep
    their Keras name, with `#1`, `#2`, ... for repeats in `variables`
    order. A `LossScaleOptimizer`'s wrapped optimizer is included.

    Example:

    ```python
    names = optimizer_variable_names(model.block_optimizers[0], model)
    ```

    Args:
        optimizer: A built optimizer (or anything with `variables`).
        model: The model whose variables the optimizer trains.

    Returns:
        `id(variable)` -> name, for every variable of `optimizer`.

    Raises:
        ValueError: if a slot's name fits two model variables equally well,
            or two variables would get the same name.
    """
    model_names = layer_variable_names(model)
    references = collections.defaultdict(list)
    for variable in model.weights:
        references[variable.path.replace("/", "_") + "_"].append(variable)
    names, unreferenced = {}, []
    for variable in optimizer_variables(optimizer):
        prefixes = [p for p in references if variable.name.startswith(p)]
        if not prefixes:
            unreferenced.append(variable)
            continue
        prefix = max(prefixes, key=len)
        if len(references[prefix]) > 1:
            paths = ", ".join(v.path for v in references[prefix])
            raise UserError(
                f"Optimizer variable {variable.name} could belong to any of "
                f"the model variables {paths}: a checkpoint cannot tell "
                "their slots apart. Give the variables distinct paths "
                "(distinct layer names, or variable names in one layer)."
            )
        owner = model_names[id(references[prefix][0])]
        names[id(variable)] = f"{owner}/{variable.name[len(prefix) :]}"
    names.update(_numbered_by_name("", unreferenced))
    _check_unique(names, optimizer_variables(optimizer))
    return names


def _name_layer(layer, path, visited, names):
    """Names `layer`'s variables not named yet, its children's first."""
    visited.add(id(layer))
    for child_path, child in _children(layer, path):
        if id(child) not in visited:
            _name_layer(child, child_path, visited, names)
    own = [v for v in layer.weights if id(v) not in names]
    names.update(_numbered_by_name(path, own))


def _children(layer, path):
    """`(path, layer)` of every layer `layer` holds, in naming order."""
    attributes = sorted(vars(layer).items())
    for name, value in attributes:
        if not name.startswith("_"):
            yield from _layers_in(value, _join(path, name))
    if isinstance(layer, keras.Model):
        for index, child in enumerate(layer.layers):
            yield _join(path, f"layers/{index}"), child
    for name, value in attributes:
        if name.startswith("_"):
            yield from _layers_in(value, _join(path, name))


def _layers_in(value, path):
    """The layers in an attribute's value: itself, or in lists and dicts."""
    if isinstance(value, keras.layers.Layer):
        yield path, value
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            yield from _layers_in(item, _join(path, str(index)))
    elif isinstance(value, dict):
        for key in sorted(value, key=str):
            yield from _layers_in(value[key], _join(path, str(key)))


def _numbered_by_name(path, variables):
    """`<path>/<name>`, with `#k` on the k-th repeat of a name."""
    repeats = collections.Counter()
    names = {}
    for variable in variables:
        name = _join(path, variable.name)
        if repeats[variable.name]:
            name += f"#{repeats[variable.name]}"
        repeats[variable.name] += 1
        names[id(variable)] = name
    return names


def _check_unique(names, variables):
    """Refuses two variables of one name (names them both)."""
    first = {}
    for variable in variables:
        name = names[id(variable)]
        if first.setdefault(name, variable) is not variable:
            raise UserError(
                f"Variables {first[name].path} and {variable.path} would "
                f"both be saved as {name!r}: give their layers distinct "
                "attribute names."
            )


def _join(path, name):
    return f"{path}/{name}" if path else name
