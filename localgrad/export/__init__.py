"""Exports a trained greedy model for serving, without localgrad.

`save(model, path, ensemble=None, early_exits=False, tflite=False)` writes
a SavedModel whose endpoints hold only the weights they read: `serve` (the
network's own classifier; `serving_default`), `serve_ensemble` (the mean
log-probabilities of the last n heads) and `serve_exit_k` (an early exit
after block k). See `localgrad.export.saved_model` for the outputs.

Example:

```python
localgrad.export.save(model, "/tmp/export", ensemble=2, early_exits=True)

loaded = tf.saved_model.load("/tmp/export")   # no localgrad import needed
loaded.serve(images)["probabilities"]
loaded.serve_ensemble(images)["predicted_class"]
loaded.serve_exit_1(images)["logits"]
```

From a train binary's workdir:

    localgrad-export --workdir=/tmp/run --output=/tmp/export --ensemble=2
"""

from localgrad.export.saved_model import (
    ExportSummary,
    InferenceModule,
    resolve_early_exits,
    save,
)
from localgrad.export.sizes import (
    ParameterCount,
    directory_size,
    parameter_count,
    saved_parameter_count,
)
from localgrad.export.tflite import TFLITE_FILENAME, convert_to_tflite
from localgrad.export.workdir import export_workdir, load_trained_model

__all__ = [
    "ExportSummary",
    "InferenceModule",
    "ParameterCount",
    "TFLITE_FILENAME",
    "convert_to_tflite",
    "directory_size",
    "export_workdir",
    "load_trained_model",
    "parameter_count",
    "resolve_early_exits",
    "save",
    "saved_parameter_count",
]
