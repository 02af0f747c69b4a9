"""TensorFlow's fused BatchNormalization kernel for the search's steps.

Keras 3 normalizes a batch with a dozen separate operations (the moments,
then subtract, scale and shift), and their gradient with a dozen more.
The meta-gradient differentiates every inner step a second time, so
TensorFlow keeps each of those full-size intermediates, for every
BatchNormalization layer of the supernet, until the outer backward pass.
TensorFlow's fused kernel (`FusedBatchNormV3`) computes the same output in
one operation and its gradient in one (`FusedBatchNormGradV3`), whose own
gradient TensorFlow registers: the second derivatives stay exact, and
fewer tensors are kept. A VGG-19 search (4 candidate heads, T = 5) peaked
at 0.71× the memory and reached its first meta-iteration in 0.70× the CPU
time (BENCHMARKS.md).

While `fused_batch_normalization(layers)` is active, those
BatchNormalization layers, called in training mode, run the fused kernel
if the call fits it: float32 channels-last inputs of rank 2 or more, no
mask, no renormalization, no synchronized moments, the TensorFlow backend.
Every other call, and every other layer, keeps Keras' own path.
"""

import contextlib
import types

import keras
import tensorflow as tf


def fits_fused_kernel(layer, inputs, training, mask) -> bool:
    """Whether this BatchNormalization call can run the fused kernel.

    Example:

    ```python
    layer = keras.layers.BatchNormalization()
    fits_fused_kernel(layer, tf.zeros((8, 4, 4, 3)), True, None)  # True
    fits_fused_kernel(layer, tf.zeros((8, 4, 4, 3)), False, None)  # False
    ```
    """
    if not training or not isinstance(inputs, tf.Tensor):
        return False
    rank = inputs.shape.rank
    return (
        layer.trainable
        and mask is None
        and not layer.renorm
        and not layer.synchronized
        and keras.backend.backend() == "tensorflow"
        and rank is not None
        and rank >= 2
        and layer.axis in (-1, rank - 1)
        and inputs.dtype == tf.float32
        and keras.backend.standardize_dtype(layer.compute_dtype) == "float32"
    )


def fused_call(layer, inputs):
    """`layer(inputs, training=True)` through `FusedBatchNormV3`.

    Normalizes with the batch's moments and updates the moving statistics
    as Keras does (with the biased batch variance).

    Example:

    ```python
    if fits_fused_kernel(layer, x, True, None):
        y = fused_call(layer, x)  # Keras' layer(x, training=True), fused
    ```
    """
    channels = inputs.shape[-1]
    # The kernel takes (batch, height, width, channels); any channels-last
    # input reshapes to it, reducing over every axis but the channels.
    images = inputs
    if inputs.shape.rank != 4:
        images = tf.reshape(inputs, [tf.shape(inputs)[0], 1, -1, channels])
    scale = _cast(layer.gamma) if layer.scale else tf.ones([channels])
    offset = _cast(layer.beta) if layer.center else tf.zeros([channels])
    outputs, mean, unbiased_variance, *_ = tf.raw_ops.FusedBatchNormV3(
        x=images,
        scale=scale,
        offset=offset,
        mean=tf.zeros([0]),
        variance=tf.zeros([0]),
        epsilon=layer.epsilon,
        exponential_avg_factor=1.0,
        data_format="NHWC",
        is_training=True,
    )
    count = tf.cast(tf.size(images) // channels, tf.float32)
    # The kernel's variance is unbiased; Keras averages the biased one.
    variance = tf.math.multiply_no_nan(unbiased_variance, (count - 1.0) / count)
    momentum = layer.momentum
    layer.moving_mean.assign(
        _cast(layer.moving_mean) * momentum + mean * (1.0 - momentum)
    )
    layer.moving_variance.assign(
        _cast(layer.moving_variance) * momentum + variance * (1.0 - momentum)
    )
    if inputs.shape.rank != 4:
        outputs = tf.reshape(outputs, tf.shape(inputs))
        outputs.set_shape(inputs.shape)
    return outputs


@contextlib.contextmanager
def fused_batch_normalization(layers):
    """Within the block, `layers` train through the fused kernel.

    Each of the given BatchNormalization layers gets a `call` of its own
    for the block's duration; the class, and so every other layer (of
    this model or another thread's), keeps Keras' own.

    Example:

    ```python
    with fused_batch_normalization(batch_norm_layers(supernet)):
        outputs, new_statistics = supernet.stateless_call(..., training=True)
    ```
    """
    layers = list(layers)
    for layer in layers:
        layer.call = types.MethodType(_fused_if_it_fits, layer)
    try:
        yield
    finally:
        for layer in layers:
            del layer.call


def _fused_if_it_fits(layer, inputs, training=None, mask=None):
    if fits_fused_kernel(layer, inputs, training, mask):
        return fused_call(layer, inputs)
    return type(layer).call(layer, inputs, training=training, mask=mask)


def _cast(variable):
    return keras.ops.cast(variable, "float32")
