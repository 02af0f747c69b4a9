"""Parameter counts and sizes on disk, of models and of exported ones.

A *parameter* is one scalar of a layer weight: trainable or not, so
BatchNorm's moving means and variances count; optimizer slots, metric
state and random-seed state do not (they are not in `layer.weights`). The
*effective* parameters of an endpoint are the weights its computation
reads: for the network's own classifier, every unit and the classifier.

Example:

```python
count = parameter_count(network.weights)
count.variables, count.parameters, count.bytes
saved_parameter_count("/tmp/export")   # what the SavedModel holds
directory_size("/tmp/export")          # bytes on disk
```
"""

import dataclasses
import os
from collections.abc import Iterable

import numpy as np
import tensorflow as tf

from localgrad.errors import UserError

# The checkpoint entry that holds the object graph, not a variable.
_OBJECT_GRAPH_KEY = "_CHECKPOINTABLE_OBJECT_GRAPH"


@dataclasses.dataclass(frozen=True)
class ParameterCount:
    """How many variables, scalars and bytes a set of weights holds.

    Attributes:
        variables: The number of variables.
        parameters: The number of scalars in them.
        bytes: Their size in memory (scalars times dtype size).
    """

    variables: int
    parameters: int
    bytes: int

    def __sub__(self, other: "ParameterCount") -> "ParameterCount":
        return ParameterCount(
            self.variables - other.variables,
            self.parameters - other.parameters,
            self.bytes - other.bytes,
        )


def parameter_count(variables: Iterable) -> ParameterCount:
    """Counts variables (Keras or TF), deduplicated by identity.

    Example:

    ```python
    parameter_count(model.network.weights).parameters
    ```

    Args:
        variables: Keras or TF variables.

    Returns:
        A `ParameterCount`.
    """
    seen, count, scalars, size = set(), 0, 0, 0
    for variable in variables:
        key = id(variable)
        if key in seen:
            continue
        seen.add(key)
        elements = int(np.prod(variable.shape, dtype=np.int64))
        count += 1
        scalars += elements
        size += elements * tf.as_dtype(variable.dtype).size
    return ParameterCount(count, scalars, size)


def saved_parameter_count(export_dir: str) -> ParameterCount:
    """Counts the variables a SavedModel directory holds on disk.

    Reads the checkpoint in `export_dir/variables/`; needs only TensorFlow.

    Args:
        export_dir: A SavedModel directory.

    Returns:
        A `ParameterCount` of every saved variable.

    Raises:
        ValueError: if `export_dir` holds no SavedModel variables.
    """
    prefix = os.path.join(export_dir, "variables", "variables")
    if not tf.io.gfile.exists(prefix + ".index"):
        raise UserError(
            f"{export_dir} holds no SavedModel variables (no "
            f"{prefix}.index); pass the directory localgrad.export.save "
            "wrote."
        )
    reader = tf.train.load_checkpoint(prefix)
    shapes = reader.get_variable_to_shape_map()
    dtypes = reader.get_variable_to_dtype_map()
    count, scalars, size = 0, 0, 0
    for key, shape in shapes.items():
        if key == _OBJECT_GRAPH_KEY:
            continue
        elements = int(np.prod(shape, dtype=np.int64))
        count += 1
        scalars += elements
        size += elements * dtypes[key].size
    return ParameterCount(count, scalars, size)


def directory_size(path: str, exclude: Iterable[str] = ()) -> int:
    """The total size in bytes of the files under `path`.

    Args:
        path: A file or a directory.
        exclude: Names of files directly under `path` not to count.

    Returns:
        The number of bytes.
    """
    if not os.path.isdir(path):
        return os.path.getsize(path)
    skip = {os.path.join(path, name) for name in exclude}
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            file_path = os.path.join(root, name)
            if file_path not in skip:
                total += os.path.getsize(file_path)
    return total
