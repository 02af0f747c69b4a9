"""Batch moments whose second derivatives are exact, for the unroll.

Keras' BatchNormalization takes its batch moments from `tf.nn.moments`,
which computes the variance around `stop_gradient(mean)`. Its first
derivative is exact (the mean's term vanishes), but a tape that
differentiates that gradient again, as the meta-gradient does through
every inner step, sees the mean as a constant and gets wrong second-order
terms. While the unrolled steps are traced, `exact_batch_moments()` swaps
in moments without the stop: the same values, exact derivatives of every
order.
"""

import tensorflow as tf

from localgrad import keras_internals


def _moments(x, axes, keepdims):
    mean = tf.reduce_mean(x, axes, keepdims=True)
    variance = tf.reduce_mean(
        tf.math.squared_difference(x, mean), axes, keepdims=True
    )
    if not keepdims:
        mean = tf.squeeze(mean, axes)
        variance = tf.squeeze(variance, axes)
    return mean, variance


def exact_batch_moments():
    """Within the block, Keras' TensorFlow batch moments differentiate
    exactly to any order.

    Example:

    ```python
    with exact_batch_moments():
        value, grads = traced_meta_gradient(...)
    ```

    If this Keras version keeps its moments elsewhere, a warning says that
    second-order terms through BatchNormalization stay approximate.
    """
    return keras_internals.tensorflow_moments(_moments)
