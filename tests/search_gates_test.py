"""Tests of SEDONA's gradient gates and the relaxed loss."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import localgrad
from localgrad.search import RelaxedSupernet
from localgrad.search.gates import (
    gate,
    relaxed_loss,
    smoothed_cross_entropy,
    tape_detach,
)

BATCH, WIDTH, CLASSES, SMOOTHING = 5, 4, 3, 0.1


class Probe(keras.layers.Layer):
    """Adds a zero variable to its input: its gradient is the signal there."""

    def __init__(self, batch, width, **kwargs):
        super().__init__(**kwargs)
        self.batch, self.width = batch, width

    def build(self, input_shape):
        self.offset = self.add_weight(
            shape=(self.batch, self.width), initializer="zeros", name="offset"
        )

    def call(self, inputs):
        return inputs + self.offset


def _linear_network():
    units = [
        keras.Sequential(
            [keras.layers.Dense(WIDTH, use_bias=False), Probe(BATCH, WIDTH)],
            name=f"unit_{i}",
        )
        for i in range(3)
    ]
    classifier = keras.layers.Dense(CLASSES, name="classifier")
    return localgrad.Network(units, classifier, (WIDTH,), architecture="lin")


def _smoothed_targets(labels):
    targets = np.full((len(labels), CLASSES), SMOOTHING / CLASSES)
    targets[np.arange(len(labels)), labels] += 1.0 - SMOOTHING
    return targets


def _softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("nested", [False, True])
def test_gates_give_the_mixed_signal_of_a_hand_computation(nested):
    floatx, policy = keras.config.floatx(), keras.config.dtype_policy()
    keras.config.set_floatx("float64")
    keras.config.set_dtype_policy("float64")
    try:
        keras.utils.set_random_seed(1)
        network = _linear_network()
        supernet = RelaxedSupernet(network, heads=["linear"])
    finally:
        keras.config.set_floatx(floatx)
        keras.config.set_dtype_policy(policy)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(BATCH, WIDTH))
    y = rng.integers(0, CLASSES, BATCH)
    alpha = rng.normal(size=(2, 2))
    a = _softmax(alpha)
    beta = np.zeros((2, 1))
    probes = [unit.layers[1].offset for unit in network.units]

    with tf.GradientTape(persistent=True) as tape:
        detach = tape_detach(tape) if nested else None
        logits, local = supernet(
            tf.constant(x),
            tf.constant(a),
            tf.constant(_softmax(beta)),
            training=True,
            detach=detach,
        )
        loss = relaxed_loss(logits, local, tf.constant(a), y, SMOOTHING)
    deltas = [np.asarray(g) for g in tape.gradient(loss, probes)]

    # By hand: h_l = h_{l-1} W_l; local loss L_l from a linear head on h_l.
    weights = [np.asarray(u.layers[0].kernel) for u in network.units]
    heads = [supernet.candidate_heads[i][0].classifier for i in range(2)]
    t = _smoothed_targets(y)
    h, hs = x, []
    for w in weights:
        h = h @ w
        hs.append(h)

    def local_grad(features, dense):
        kernel, bias = np.asarray(dense.kernel), np.asarray(dense.bias)
        z = features @ kernel + bias
        return (_softmax(z) - t) / BATCH @ kernel.T

    expected = [None, None, local_grad(hs[2], network.classifier)]
    for unit in (1, 0):  # delta_l = a_l0 dL_l + a_l1 J_{l+1}^T delta_{l+1}
        local = local_grad(hs[unit], heads[unit])
        back = expected[unit + 1] @ weights[unit + 1].T
        expected[unit] = a[unit, 0] * local + a[unit, 1] * back
    for got, want in zip(deltas, expected):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-13)


def test_gate_keeps_the_forward_value_and_scales_the_gradient():
    h = tf.constant([[1.0, -2.0, 3.0]])
    with tf.GradientTape() as tape:
        tape.watch(h)
        out = gate(h, tf.constant(0.25))
        total = tf.reduce_sum(out * tf.constant([[1.0, 2.0, 3.0]]))
    np.testing.assert_array_equal(out, h)
    np.testing.assert_allclose(tape.gradient(total, h), [[0.25, 0.5, 0.75]])


def test_tape_detach_hides_the_copy_from_the_inner_tape_only():
    h = tf.constant(2.0)
    with tf.GradientTape() as outer:
        outer.watch(h)
        with tf.GradientTape() as inner:
            inner.watch(h)
            out = gate(h, tf.constant(0.5), detach=tape_detach(inner)) ** 2
        inner_grad = inner.gradient(out, h)  # 0.5 * 2h = 2
    assert float(inner_grad) == pytest.approx(2.0)
    # The outer tape sees out = h^2 unscaled: d/dh of the inner gradient
    # 0.5 * 2 * h is 1.
    assert float(outer.gradient(inner_grad, h)) == pytest.approx(1.0)


def test_smoothed_cross_entropy_matches_a_hand_computation():
    logits = np.array([[1.0, 2.0, 0.5], [0.0, -1.0, 3.0]])
    labels = np.array([1, 2])
    probs = _softmax(logits)
    t = np.full((2, 3), 0.2 / 3)
    t[[0, 1], labels] += 0.8
    want = -np.mean(np.sum(t * np.log(probs), axis=1))
    got = smoothed_cross_entropy(tf.constant(logits), labels, 0.2)
    assert got.dtype == tf.float64
    assert float(got) == pytest.approx(want, rel=1e-12)
