"""Tests of exact batch moments (second derivatives through BN)."""

import keras
import numpy as np
import tensorflow as tf

from localgrad.search.exact_moments import exact_batch_moments


def _second_derivative(x, direction):
    """d/dx <direction, d/dx sum(BN(x)^3)>: a Hessian-vector product."""
    with tf.GradientTape() as outer:
        outer.watch(x)
        with tf.GradientTape() as inner:
            inner.watch(x)
            mean, variance = keras.ops.moments(x, axes=[0])
            y = (x - mean) / tf.sqrt(variance + 1e-3)
            loss = tf.reduce_sum(y**3)
        gradient = inner.gradient(loss, x)
        product = tf.reduce_sum(gradient * direction)
    return outer.gradient(product, x)


def test_exact_moments_give_the_true_hessian_vector_product():
    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(size=(6, 3)))
    direction = tf.constant(rng.normal(size=(6, 3)))
    eps = 1e-6

    def gradient_at(point):
        with tf.GradientTape() as tape:
            tape.watch(point)
            mean, variance = keras.ops.moments(point, axes=[0])
            y = (point - mean) / tf.sqrt(variance + 1e-3)
            loss = tf.reduce_sum(y**3)
        return tape.gradient(loss, point)

    # Finite differences of the (exact) first derivative along each x_ij.
    want = np.zeros((6, 3))
    for index in np.ndindex(6, 3):
        delta = np.zeros((6, 3))
        delta[index] = eps
        plus = gradient_at(x + delta)
        minus = gradient_at(x - delta)
        want[index] = np.sum((plus - minus) / (2 * eps) * direction)
    with exact_batch_moments():
        exact = _second_derivative(x, direction)
    approximate = _second_derivative(x, direction)
    np.testing.assert_allclose(exact, want, rtol=1e-5, atol=1e-6)
    # Without the swap tf.nn.moments' stop_gradient shows.
    assert not np.allclose(approximate, want, rtol=1e-3)
    # And the swap is undone on exit.
    np.testing.assert_allclose(
        _second_derivative(x, direction), approximate, rtol=1e-12
    )
