"""Tests of the unrolled inner loop and the meta-gradient.

The finite-difference checks run in float64 on a tiny conv-BN-tanh network
with two candidate heads: central differences with step 1e-6 are accurate
to about 1e-10 there, and the meta-gradient must match them to
atol 1e-8 + rtol 1e-5 (measured: about 2e-10).
"""

import contextlib

import keras
import numpy as np
import pytest
import tensorflow as tf

import localgrad
from localgrad.search import MetaStep, RelaxedSupernet, SupernetState

HEADS = ("linear", "light1")
SHAPE, CLASSES, BATCH = (4, 4, 1), 5, 8


def _unit(index):
    return keras.Sequential(
        [
            keras.layers.Conv2D(3, 3, padding="same"),
            keras.layers.BatchNormalization(),
            keras.layers.Activation("tanh"),
        ],
        name=f"unit_{index}",
    )


@contextlib.contextmanager
def _floatx(dtype):
    """Builds layers in `dtype`, then restores Keras' global dtypes."""
    floatx, policy = keras.config.floatx(), keras.config.dtype_policy()
    keras.config.set_floatx(dtype)
    keras.config.set_dtype_policy(dtype)
    try:
        yield
    finally:
        keras.config.set_floatx(floatx)
        keras.config.set_dtype_policy(policy)


def _supernet(dtype, heads=HEADS):
    with _floatx(dtype):
        keras.utils.set_random_seed(3)
        classifier = keras.Sequential(
            [keras.layers.Flatten(), keras.layers.Dense(CLASSES)]
        )
        network = localgrad.Network(
            [_unit(i) for i in range(3)], classifier, SHAPE
        )
        return RelaxedSupernet(network, heads, head_width=0.02)


def _problem(dtype, steps, heads=HEADS):
    rng = np.random.default_rng(0)
    supernet = _supernet(dtype, heads)
    state = SupernetState.from_layer(supernet)
    # Non-zero momentum buffers, as a snapshot from the warm-up has.
    state = state._replace(
        velocities=tuple(
            tf.constant(rng.normal(size=v.shape) * 0.1, dtype)
            for v in state.velocities
        )
    )
    data = dict(
        train_x=rng.normal(size=(steps, BATCH) + SHAPE).astype(dtype),
        train_y=rng.integers(0, CLASSES, (steps, BATCH)).astype("int32"),
        valid_x=rng.normal(size=(BATCH,) + SHAPE).astype(dtype),
        valid_y=rng.integers(0, CLASSES, BATCH).astype("int32"),
        learning_rate=tf.constant(0.5, dtype),
    )
    alpha = tf.constant(rng.normal(size=(2, 2)) * 0.5, dtype)
    beta = tf.constant(rng.normal(size=(2, len(heads))) * 0.5, dtype)
    return supernet, state, alpha, beta, data


def _finite_differences(steps, state, alpha, beta, data, eps=1e-6):
    def objective(a, b):
        return float(steps.unrolled_objective(state, a, b, **data))

    grads = []
    for which in (0, 1):
        base = (alpha, beta)[which]
        grad = np.zeros(base.shape)
        for index in np.ndindex(*base.shape):
            delta = np.zeros(base.shape)
            delta[index] = eps
            pair_plus = [alpha, beta]
            pair_minus = [alpha, beta]
            pair_plus[which] = base + delta
            pair_minus[which] = base - delta
            grad[index] = (objective(*pair_plus) - objective(*pair_minus)) / (
                2 * eps
            )
        grads.append(grad)
    return grads


@pytest.mark.numerics
@pytest.mark.parametrize(
    "num_steps, objective, jit_compile",
    [(1, "valid", None), (2, "valid", False), (2, "train_last", None)],
)
def test_meta_gradient_matches_finite_differences(
    num_steps, objective, jit_compile
):
    supernet, state, alpha, beta, data = _problem("float64", num_steps)
    steps = MetaStep(
        supernet,
        objective=objective,
        jit_compile=jit_compile,
        label_smoothing=0.1,
    )
    value, grad_alpha, grad_beta = steps.meta_gradient(
        state, alpha, beta, **data
    )
    assert value.dtype == tf.float64
    fd_alpha, fd_beta = _finite_differences(steps, state, alpha, beta, data)
    assert np.abs(fd_alpha).max() > 1e-4  # The check is not vacuous.
    assert np.abs(fd_beta).max() > 1e-5
    np.testing.assert_allclose(grad_alpha, fd_alpha, rtol=1e-5, atol=1e-8)
    np.testing.assert_allclose(grad_beta, fd_beta, rtol=1e-5, atol=1e-8)


def test_first_order_is_exact_for_one_step_and_drops_terms_after():
    supernet, state, alpha, beta, data = _problem("float64", 2)
    full = MetaStep(supernet, jit_compile=None)
    first = MetaStep(supernet, jit_compile=None, first_order=True)
    one_step = dict(
        data, train_x=data["train_x"][:1], train_y=data["train_y"][:1]
    )
    for name, kwargs in (("T=1", one_step), ("T=2", data)):
        _, full_alpha, full_beta = full.meta_gradient(
            state, alpha, beta, **kwargs
        )
        _, first_alpha, first_beta = first.meta_gradient(
            state, alpha, beta, **kwargs
        )
        if name == "T=1":
            np.testing.assert_allclose(first_alpha, full_alpha, rtol=1e-10)
            np.testing.assert_allclose(first_beta, full_beta, rtol=1e-10)
        else:
            assert not np.allclose(first_alpha, full_alpha, rtol=1e-6)


def test_unroll_is_momentum_sgd_with_frozen_batch_norm_statistics():
    supernet, state, alpha, beta, data = _problem("float64", 2)
    steps = MetaStep(supernet, jit_compile=None, label_smoothing=0.1)
    # By hand: ordinary relaxed steps, putting the BN statistics back after
    # each, then the network in inference mode on the validation batch.
    manual = state
    for t in range(2):
        manual, _ = steps.relaxed_step(
            manual,
            alpha,
            beta,
            data["train_x"][t],
            data["train_y"][t],
            data["learning_rate"],
        )
        changed = any(
            not np.array_equal(a, b)
            for a, b in zip(manual.non_trainable, state.non_trainable)
        )
        assert changed  # An ordinary step does update the statistics.
        manual = manual._replace(non_trainable=state.non_trainable)
    network = supernet.network
    for variable, value in zip(supernet.trainable_variables, manual.trainable):
        variable.assign(value)
    for variable, value in zip(
        supernet.non_trainable_variables, manual.non_trainable
    ):
        variable.assign(value)
    logits = network(data["valid_x"], training=False)
    want = localgrad.search.smoothed_cross_entropy(logits, data["valid_y"], 0.1)
    got = steps.unrolled_objective(state, alpha, beta, **data)
    assert float(got) == pytest.approx(float(want), rel=1e-12)


@pytest.mark.numerics
def test_xla_and_graph_meta_gradients_agree():
    # Small heads (no depthwise convolutions): XLA compiles the two
    # unrolled steps' second-order graph in seconds.
    supernet, state, alpha, beta, data = _problem(
        "float32", 2, heads=("linear", "mlp")
    )
    results = [
        MetaStep(supernet, jit_compile=jit).meta_gradient(
            state, alpha, beta, **data
        )
        for jit in (True, False)
    ]
    for xla, graph in zip(*results):
        np.testing.assert_allclose(xla, graph, rtol=2e-3, atol=1e-6)
    assert np.abs(results[0][1]).max() > 1e-5


def test_unknown_objective_is_refused():
    supernet = _supernet("float32")
    with pytest.raises(ValueError, match="train_last"):
        MetaStep(supernet, objective="test")
