"""Tests of localgrad.AsyncOrder: warm-up, slowdown weights, determinism."""

import json

import numpy as np
import pytest
import tensorflow as tf
from scipy import stats

import localgrad
from localgrad.asynchrony import AsyncOrder


def test_warmup_steps_each_block_in_turn():
    order = AsyncOrder(num_blocks=3)
    assert order.in_warmup
    assert order.take(6) == [0, 0, 1, 1, 2, 2]
    assert not order.in_warmup
    assert AsyncOrder(3, warmup_repeats=1).take(3) == [0, 1, 2]


def test_warmup_restarts():
    order = AsyncOrder(num_blocks=2, seed=3)
    order.take(4 + 50)  # the warm-up, then random ticks
    order.restart_warmup()
    assert order.take(4) == [0, 0, 1, 1]
    assert order.ticks == 58


def test_no_warmup_starts_random():
    order = AsyncOrder(num_blocks=4, warmup_repeats=0)
    assert not order.in_warmup
    assert set(order.take(200)) == {0, 1, 2, 3}


def test_round_robin_after_the_warmup():
    order = AsyncOrder(num_blocks=3, warmup_repeats=1, draw="round_robin")
    assert order.take(3 + 7) == [0, 1, 2] + [0, 1, 2, 0, 1, 2, 0]
    order.restart_warmup()
    assert order.take(5) == [0, 1, 2, 1, 2]  # the round continues


def _chi_square(counts, probabilities):
    expected = counts.sum() * np.asarray(probabilities)
    return float(((counts - expected) ** 2 / expected).sum())


def test_random_ticks_follow_the_slowdown_weights():
    slowdown = {3: 2.0, 5: 1 / 0.9}
    order = AsyncOrder(num_blocks=6, slowdown=slowdown, seed=0)
    order.take(12)  # the warm-up
    ticks = 60_000
    counts = np.bincount(order.take(ticks), minlength=6)
    # Weights 1, 1, 1, 1/2, 1, 0.9: total 5.4.
    expected = np.array([1, 1, 1, 0.5, 1, 0.9]) / 5.4
    np.testing.assert_allclose(order.probabilities, expected)
    # Chi-square goodness of fit, 5 degrees of freedom: the statistic
    # exceeds this bound with probability 1e-3 when the draws follow
    # `expected`.
    bound = stats.chi2.ppf(1 - 1e-3, df=5)
    assert _chi_square(counts, expected) < bound
    # The test has power: the same counts reject equal weights.
    assert _chi_square(counts, np.full(6, 1 / 6)) > bound


def test_deterministic_for_a_seed():
    def ticks(seed):
        return AsyncOrder(5, {1: 1.5}, seed=seed).take(300)

    assert ticks(7) == ticks(7)
    assert ticks(7) != ticks(8)


def test_state_resumes_the_same_order():
    order = AsyncOrder(4, {2: 1.11}, seed=1)
    order.take(20)
    state = json.loads(json.dumps(order.get_state()))  # as a checkpoint
    resumed = AsyncOrder(4, {2: 1.11}, seed=1)
    resumed.set_state(state)
    assert resumed.take(100) == order.take(100)
    assert resumed.ticks == order.ticks == 120
    with pytest.raises(ValueError, match="Not an AsyncOrder state"):
        resumed.set_state({"ticks": 1})


def test_is_reachable_from_the_package():
    assert localgrad.AsyncOrder is AsyncOrder


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"slowdown": {6: 2.0}}, "names block 6, but the model has 6"),
        ({"slowdown": {-1: 2.0}}, "names block -1"),
        ({"slowdown": {2: 0.0}}, "finite number > 0"),
        ({"slowdown": {2: -1.5}}, "finite number > 0"),
        ({"slowdown": {2: float("nan")}}, "finite number > 0"),
        ({"slowdown": {2: "2"}}, "must be a number"),
        ({"slowdown": {"2": 2.0}}, "block indices"),
        ({"warmup_repeats": -1}, "warmup_repeats"),
        ({"num_blocks": 0}, "num_blocks must be >= 1"),
        ({"draw": "cyclic"}, "Unknown draw 'cyclic'"),
        ({"draw": "round_robin", "slowdown": {1: 2.0}}, "needs draw='random'"),
    ],
)
def test_bad_arguments_are_clear_value_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        AsyncOrder(**({"num_blocks": 6} | kwargs))


def _toy_block_step(weights, block, inputs):
    """A block's step: output from the forward, then an update from it."""
    outputs = inputs * weights[block] + block
    weights[block].assign_add(0.01 * tf.reduce_mean(outputs))
    return outputs


def _simulate(order, data, num_blocks):
    """Block weights after simulated asynchrony over one-batch buffers."""
    weights = [tf.Variable(1.0) for _ in range(num_blocks)]
    spec, labels = tf.TensorSpec((4, 2)), tf.zeros([4], tf.int32)
    buffers = [
        localgrad.ReplayBuffer(1, spec, tf.TensorSpec((4,), tf.int32))
        for _ in range(num_blocks - 1)
    ]
    fresh = iter(data)
    for block in order.take(num_blocks * len(data)):
        if block == 0:
            x = next(fresh)
        else:  # block k reads buffer k - 1
            sample = buffers[block - 1].sample()
            assert bool(sample.found)
            x = sample.features
        x = _toy_block_step(weights, block, x)
        if block < num_blocks - 1:
            buffers[block].write(x, labels)
    return [float(w) for w in weights]


def test_round_robin_with_one_batch_buffers_is_the_synchronous_schedule():
    num_blocks = 3
    data = [tf.fill([4, 2], float(n + 1)) for n in range(5)]
    synchronous = [tf.Variable(1.0) for _ in range(num_blocks)]
    for x in data:  # every block steps on the batch, in block order
        for block in range(num_blocks):
            x = _toy_block_step(synchronous, block, x)
    expected = [float(w) for w in synchronous]
    round_robin = AsyncOrder(num_blocks, warmup_repeats=0, draw="round_robin")
    assert _simulate(round_robin, data, num_blocks) == expected
    # The released warm-up (0, 0, 1, 1, 2, 2) makes block 1 read batch 2's
    # output twice and never batch 1's: no longer synchronous.
    warm = AsyncOrder(num_blocks, warmup_repeats=2, draw="round_robin")
    assert _simulate(warm, data, num_blocks)[1:] != expected[1:]
