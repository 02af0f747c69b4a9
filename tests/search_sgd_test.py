"""Tests of the search's functional momentum SGD and cosine schedule."""

import math

import numpy as np
import pytest
import tensorflow as tf

from localgrad.search.sgd import cosine_learning_rate, sgd_momentum_step


def test_sgd_momentum_step_matches_a_hand_computation():
    w = [tf.constant([1.0, -2.0]), tf.constant([[0.5]])]
    v = [tf.constant([0.1, 0.2]), tf.constant([[0.0]])]
    g = [tf.constant([0.3, 0.4]), tf.constant([[1.0]])]
    new_w, new_v = sgd_momentum_step(
        w, v, g, learning_rate=0.5, momentum=0.9, weight_decay=0.01
    )
    # d = g + wd * w; v' = 0.9 v + d; w' = w - 0.5 v'.
    want_v0 = (
        0.9 * np.array([0.1, 0.2])
        + np.array([0.3, 0.4])
        + 0.01 * (np.array([1.0, -2.0]))
    )
    np.testing.assert_allclose(new_v[0], want_v0, rtol=1e-6)
    np.testing.assert_allclose(
        new_w[0], np.array([1.0, -2.0]) - 0.5 * want_v0, rtol=1e-6
    )
    np.testing.assert_allclose(new_v[1], [[1.0 + 0.005]], rtol=1e-6)
    np.testing.assert_allclose(new_w[1], [[0.5 - 0.5 * 1.005]], rtol=1e-6)


@pytest.mark.parametrize(
    "dtypes", [["float32"], ["float64", "float32", "float64"]]
)
def test_every_weight_keeps_its_shape_and_dtype(dtypes):
    rng = np.random.default_rng(0)
    shapes = [(2, 3), (), (4,)][: len(dtypes)]
    w, v, g = (
        [tf.constant(rng.normal(size=s), d) for s, d in zip(shapes, dtypes)]
        for _ in range(3)
    )
    new_w, new_v = sgd_momentum_step(w, v, g, 0.1, 0.9, 1e-3)
    for k in range(len(w)):
        assert new_w[k].dtype == dtypes[k] and new_v[k].dtype == dtypes[k]
        want_v = 0.9 * v[k].numpy() + g[k].numpy() + 1e-3 * w[k].numpy()
        np.testing.assert_allclose(new_v[k], want_v, rtol=1e-6)
        np.testing.assert_allclose(
            new_w[k], w[k].numpy() - 0.1 * want_v, rtol=1e-6
        )


def test_cosine_learning_rate_runs_from_initial_to_final_and_stays():
    assert cosine_learning_rate(0, 100, 0.1, 1e-3) == pytest.approx(0.1)
    mid = 1e-3 + 0.5 * (0.1 - 1e-3) * (1 + math.cos(math.pi * 0.25))
    assert cosine_learning_rate(25, 100, 0.1, 1e-3) == pytest.approx(mid)
    assert cosine_learning_rate(100, 100, 0.1, 1e-3) == pytest.approx(1e-3)
    assert cosine_learning_rate(150, 100, 0.1, 1e-3) == pytest.approx(1e-3)
