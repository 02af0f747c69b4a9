"""Converts an exported SavedModel to TFLite, keeping every signature.

Example:

```python
convert_to_tflite("/tmp/export", "/tmp/export/model.tflite")

interpreter = tf.lite.Interpreter(model_path="/tmp/export/model.tflite")
runner = interpreter.get_signature_runner("serving_default")
runner(images=images)["predicted_class"]
```
"""

import os
import tempfile
import warnings

import tensorflow as tf

from localgrad.errors import UserError

TFLITE_FILENAME = "model.tflite"


def convert_to_tflite(saved_model_dir: str, output_path: str) -> str:
    """Writes a float32 TFLite model with the SavedModel's signatures.

    Each signature (`serving_default`, `serve_ensemble`, `serve_exit_k`)
    becomes a TFLite signature with the same input (`images`) and outputs
    (`logits`, `probabilities`, `predicted_class`). The batch size stays
    dynamic: the signature runner resizes the input to each call's batch.

    Args:
        saved_model_dir: A directory written by `localgrad.export.save`.
        output_path: The `.tflite` file to write.

    Returns:
        `output_path`.

    Raises:
        ValueError: if the SavedModel cannot be converted, or the TFLite
            interpreter cannot load the result.
    """
    loaded = tf.saved_model.load(saved_model_dir)
    keys = sorted(loaded.signatures)
    # The converter takes a root object with a `serve` attribute for a
    # `keras.Model.export` artifact and keeps only `serving_default`; a
    # root that merely holds the loaded model keeps every signature.
    root = tf.Module()
    root.exported = loaded
    with tempfile.TemporaryDirectory() as staging:
        path = os.path.join(staging, "saved_model")
        tf.saved_model.save(root, path, signatures=dict(loaded.signatures))
        converter = tf.lite.TFLiteConverter.from_saved_model(
            path, signature_keys=keys
        )
        try:
            flat_buffer = converter.convert()
        except Exception as error:  # The converter raises several types.
            raise UserError(
                f"TFLite could not convert {saved_model_dir}: {error}"
            ) from error
    _check_loads(flat_buffer, saved_model_dir)
    with tf.io.gfile.GFile(output_path, "wb") as file:
        file.write(flat_buffer)
    return output_path


def _check_loads(flat_buffer, saved_model_dir):
    """Raises if the TFLite interpreter rejects the converted model.

    The converter can write tensors the interpreter refuses, e.g. an
    `einsum` on a dynamic batch lowered to a reshape of static shape -1.
    """
    try:
        with warnings.catch_warnings():  # tf.lite.Interpreter's deprecation.
            warnings.simplefilter("ignore")
            tf.lite.Interpreter(model_content=flat_buffer)
    except (ValueError, RuntimeError) as error:
        raise UserError(
            f"TFLite converted {saved_model_dir}, but its interpreter "
            f"cannot load the result: {error}. Some layer lowers to ops "
            "TFLite cannot size for a dynamic batch (an einsum with a "
            "batch dimension is a known case): replace it with matmul "
            "and transposes, or export without tflite."
        ) from error
