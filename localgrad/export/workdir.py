"""Exports the model a train binary's workdir holds, and reports sizes.

The train binary writes its final trained `GreedyModel` to
`{workdir}/model.keras`; `export_workdir` loads it, exports it with
`localgrad.export.save` and returns a table of what the export holds
against the training model.

Example:

```python
print(export_workdir("/tmp/run", "/tmp/export", ensemble=2))
```
"""

import os
from collections.abc import Sequence

import keras

from localgrad.errors import UserError
from localgrad.export import sizes
from localgrad.export.saved_model import ExportSummary, save
from localgrad.greedy_model import GreedyModel

MODEL_FILENAME = "model.keras"


def load_trained_model(workdir: str) -> GreedyModel:
    """Loads `{workdir}/model.keras`, the train binary's final model.

    Args:
        workdir: A train binary's workdir.

    Returns:
        The trained `GreedyModel` (not compiled).

    Raises:
        ValueError: if the workdir holds no trained model, or the file
            holds something else.
    """
    path = os.path.join(workdir, MODEL_FILENAME)
    if not os.path.exists(path):
        raise UserError(
            f"no trained model in {workdir}: {path} does not exist. Run "
            f"localgrad-train --workdir={workdir} ... first (it writes "
            f"{MODEL_FILENAME} when training ends)."
        )
    model = keras.saving.load_model(path, compile=False)
    if not isinstance(model, GreedyModel):
        raise UserError(
            f"{path} holds a {type(model).__name__}, not a "
            "localgrad.GreedyModel; export the train binary's model."
        )
    return model


def export_workdir(
    workdir: str,
    output: str,
    ensemble: int | None = None,
    early_exits: bool | Sequence[int] = False,
    tflite: bool = False,
    adaptive_threshold: float | None = None,
) -> str:
    """Exports a workdir's trained model; returns a size report.

    Args:
        workdir: A train binary's workdir (holding `model.keras`).
        output: The SavedModel directory to write.
        ensemble: As for `localgrad.export.save`.
        early_exits: As for `localgrad.export.save`.
        tflite: As for `localgrad.export.save`.
        adaptive_threshold: As for `localgrad.export.save` (an
            `AssociatedModel`'s adaptive endpoint).

    Returns:
        A printable table: variables, parameters and bytes of the export
        against the training model's.

    Raises:
        ValueError: for a workdir without a trained model and the errors
            of `localgrad.export.save`.
    """
    model = load_trained_model(workdir)
    summary = save(
        model,
        output,
        ensemble=ensemble,
        early_exits=early_exits,
        tflite=tflite,
        adaptive_threshold=adaptive_threshold,
    )
    return format_report(
        summary,
        sizes.parameter_count(model.weights),
        sizes.directory_size(os.path.join(workdir, MODEL_FILENAME)),
    )


def format_report(
    summary: ExportSummary,
    training: sizes.ParameterCount,
    training_file_bytes: int,
) -> str:
    """A table of the export against the training model.

    Args:
        summary: What `save` returned.
        training: The training model's weights (network and heads).
        training_file_bytes: The size of its `model.keras`.

    Returns:
        The table, one line per row.
    """
    exported = summary.exported
    rows = [
        ("training model", training, f"{training_file_bytes:,} (.keras)"),
        ("exported", exported, f"{summary.size_bytes:,} (SavedModel)"),
        ("left out", training - exported, ""),
    ]
    lines = [
        f"Exported {summary.path}",
        f"endpoints: {', '.join(summary.endpoints)}",
        f"{'':16}{'variables':>10}{'parameters':>14}{'bytes':>14}  {'on disk'}",
    ]
    for name, count, disk in rows:
        lines.append(
            f"{name:16}{count.variables:>10,}{count.parameters:>14,}"
            f"{count.bytes:>14,}  {disk}"
        )
    if summary.tflite_path:
        lines.append(
            f"TFLite: {summary.tflite_path} ({summary.tflite_bytes:,} bytes)"
        )
    return "\n".join(lines)
