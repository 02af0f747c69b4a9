"""Config fields declared once: a name, a default and a one-line doc.

`localgrad.train_fields.FIELDS` and `localgrad.search.search_fields.FIELDS`
declare every field of the training and the search configs;
`default_config()` and `default_search_config()` are built from them, and
`localgrad-train --show_config` prints them as a `table`.

Example:

```python
FIELDS = (
    Field("model", "vgg11", "The network: a name of models.MODEL_NAMES."),
    Field("data_dir", None, "Where the data set's files are.", str),
)
config = config_from(FIELDS)  # data_dir: a str placeholder, None until set
config.model = "mlp"
print(table(config, FIELDS))
```
"""

import dataclasses
from collections.abc import Sequence
from typing import Any

from ml_collections import config_dict

from localgrad.errors import UserError


@dataclasses.dataclass(frozen=True)
class Field:
    """One config field: its name, default and one-line description.

    Example:

    ```python
    Field("epochs", 10, "Epochs to train.")
    Field("data_dir", None, "Where the files are.", str)
    ```

    Args:
        name: The field's name (`--config.<name>` on the command line).
        default: Its default; None for an optional field (give `value_type`).
        doc: What it is, in one line.
        value_type: An optional field's type: a `None` default becomes a
            typed placeholder, so that the command line can still set it.

    Raises:
        ValueError: for an empty or multi-line doc, or a None default
            without `value_type`.
    """

    name: str
    default: Any
    doc: str
    value_type: type | None = None

    def __post_init__(self):
        if not self.doc.strip() or "\n" in self.doc:
            raise UserError(
                f"Field {self.name!r} needs a one-line doc; got {self.doc!r}."
            )
        if self.default is None and self.value_type is None:
            raise UserError(
                f"Field {self.name!r} defaults to None: give its type "
                "(value_type=str, int, ...) so that it can be set later."
            )


def config_from(fields: Sequence[Field]) -> config_dict.ConfigDict:
    """A `ConfigDict` holding every field at its default.

    Example:

    ```python
    config_from([Field("epochs", 10, "Epochs to train.")]).epochs  # 10
    ```
    """
    config = config_dict.ConfigDict()
    for field in fields:
        if field.default is None:
            config[field.name] = config_dict.placeholder(field.value_type)
        else:
            config[field.name] = field.default
    return config


def table(config: config_dict.ConfigDict, fields: Sequence[Field]) -> str:
    """Every field of `config`: its value, its default and its doc.

    A field whose value differs from its default is marked `*`; a field
    of `config` that `fields` does not declare is listed last, undocumented.

    Example:

    ```python
    print(table(config, localgrad.train_fields.FIELDS))
    #   field       value     default   description
    # * num_blocks  2         4         K: the number of blocks; 1 ...
    ```

    Returns:
        Lines of text, without a final newline.
    """
    declared = {field.name: field for field in fields}
    names = [field.name for field in fields if field.name in config]
    names += [name for name in config.keys() if name not in declared]
    rows = [("", "field", "value", "default", "description")]
    for name in names:
        field = declared.get(name)
        value = config[name]
        default = field.default if field else None
        changed = field is None or _shown(value) != _shown(default)
        rows.append(
            (
                "*" if changed else "",
                name,
                _shown(value),
                _shown(default) if field else "-",
                field.doc if field else "(not a declared field)",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    widths[2] = min(widths[2], 24)
    widths[3] = min(widths[3], 24)
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths))
        + "  "
        + row[4]
        for row in rows
    )


def _shown(value):
    if isinstance(value, (list, tuple)):
        return repr(tuple(value))
    return repr(value)
