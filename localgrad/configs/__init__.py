"""The configs shipped with localgrad, found by name.

A config's name is its module's path in this folder without `.py`:
`quickstart`, `fashion_mnist`, `paper/cifar10_vgg19`, `search/tiny`. The
commands take a name, a name and a variant after a colon
(`fashion_mnist:dgl`), or the path of a config file of your own
(`/some/dir/my_config.py:variant`).

Example:

```python
localgrad.configs.resolve("paper/cifar10_vgg19:sedona")
# ".../site-packages/localgrad/configs/paper/cifar10_vgg19.py:sedona"
localgrad.configs.resolve("/some/dir/my_config.py")  # unchanged
config = localgrad.configs.load("fashion_mnist:dgl")  # a ConfigDict
```
"""

import difflib
import importlib.util
import os

import ml_collections

from localgrad.errors import UserError

DIRECTORY = os.path.dirname(os.path.abspath(__file__))


def names() -> list[str]:
    """The names of the shipped configs, sorted (`"paper/cifar10_vgg19"`)."""
    found = []
    for folder, _, files in os.walk(DIRECTORY):
        relative = os.path.relpath(folder, DIRECTORY)
        for file in files:
            if file.endswith(".py") and not file.startswith("_"):
                name = os.path.normpath(os.path.join(relative, file[:-3]))
                found.append(name.replace(os.sep, "/"))
    return sorted(found)


def resolve(spec: str) -> str:
    """The config file (and variant) that `spec` names, as a path.

    Example:

    ```python
    resolve("fashion_mnist:dgl")  # ".../configs/fashion_mnist.py:dgl"
    resolve("my_config.py:dgl")   # "my_config.py:dgl": a path, unchanged
    ```

    Args:
        spec: A shipped config's name or a file path ending in `.py`,
            either followed by `:variant`.

    Returns:
        `spec` with a name replaced by its file's path.

    Raises:
        ValueError: for a name that is not a shipped config's, naming the
            nearest ones (or all).
    """
    name, colon, variant = spec.partition(":")
    if name.endswith(".py"):
        return spec
    known = names()
    if name not in known:
        nearest = difflib.get_close_matches(name, known, n=3, cutoff=0.6)
        hint = (
            f"did you mean {', '.join(nearest)}?"
            if nearest
            else f"the shipped configs are {', '.join(known)}."
        )
        raise UserError(
            f"Unknown config {name!r}; {hint} A config file of your own: "
            "give its path, ending in .py."
        )
    path = os.path.join(DIRECTORY, *name.split("/")) + ".py"
    return path + colon + variant


def load(spec: str) -> ml_collections.ConfigDict:
    """The config that `spec` names, as `--config=<spec>` loads it.

    Example:

    ```python
    config = load("tiny")
    config.num_blocks = 2
    localgrad.train_lib.train_and_evaluate(config, "/tmp/tiny")
    ```

    Args:
        spec: As in `resolve`.

    Returns:
        The module's `get_config()`, or `get_config(variant)`.

    Raises:
        ValueError: as `resolve`.
    """
    path, colon, variant = resolve(spec).partition(":")
    module_spec = importlib.util.spec_from_file_location("_config", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module.get_config(variant) if colon else module.get_config()
