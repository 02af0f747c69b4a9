"""The private Keras and TensorFlow parts localgrad uses, and why.

Each function here fills a gap Keras' public API leaves, and is the only
place localgrad reaches into `keras.src` or a private attribute; its test
(tests/keras_internals_test.py) fails loudly when a Keras release moves
what it relies on.

Example:

```python
container = metrics_container(trackers, name="block_metric_directions")
adopt_value(variable, tf.Variable(variable.value, name=variable.name))
with tensorflow_moments(exact_moments):
    keras.ops.moments(x, axes=[0])  # computed by exact_moments
```
"""

import contextlib
import warnings
from collections.abc import Callable, Sequence

import keras
import tensorflow as tf


def metrics_container(metrics: Sequence, name: str) -> keras.metrics.Metric:
    """Keras' own container of compiled metrics, holding `metrics`.

    Keras' monitoring callbacks (EarlyStopping, ModelCheckpoint,
    ReduceLROnPlateau) in mode "auto" learn whether a metric is maximised
    only from metrics inside Keras' compile containers; a model with
    metrics of its own lists them in one of these so that they are found.
    """
    from keras.src.trainers.compile_utils import MetricsList

    return MetricsList(list(metrics), name=name)


def adopt_value(variable: keras.Variable, value: tf.Variable) -> None:
    """Makes `value` the `tf.Variable` a Keras variable wraps.

    Keras has no public way to re-place a variable on another device; its
    TensorFlow backend adopts a given `tf.Variable` as the value.
    """
    variable._initialize(value)


@contextlib.contextmanager
def tensorflow_moments(moments: Callable):
    """Within the block, Keras' TensorFlow backend computes batch moments
    with `moments(x, axes, keepdims) -> (mean, variance)`.

    Process-wide while the block runs: every `keras.ops.moments` (and so
    every BatchNormalization in training mode) of every thread. If this
    Keras keeps its moments elsewhere, a warning says so and Keras' own
    are used.
    """
    try:
        from keras.src.backend.tensorflow import nn as tensorflow_nn

        original = tensorflow_nn._compute_moments
    except (ImportError, AttributeError):
        warnings.warn(
            "localgrad could not find Keras' TensorFlow moments; they stay "
            "Keras' own (in the search: meta-gradients through "
            "BatchNormalization keep tf.nn.moments' approximate "
            "second-order terms).",
            stacklevel=3,
        )
        yield
        return
    tensorflow_nn._compute_moments = moments
    try:
        yield
    finally:
        tensorflow_nn._compute_moments = original
