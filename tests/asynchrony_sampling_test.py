"""Tests of the ReplayBuffer slot-choice policies, on hand-made states."""

import numpy as np
import pytest
import tensorflow as tf

from localgrad.asynchrony.sampling import choose_slot, eligible_slots

# Slot:         0  1  2  3   4
WRITTEN_AT = [7, 4, 6, 5, -1]  # slot 4 never written
USES = [1, 0, 0, 3, 0]


def _choose(sampling, max_reuse=None, seed=0):
    written_at = tf.constant(WRITTEN_AT, tf.int64)
    uses = tf.constant(USES, tf.int32)
    eligible = eligible_slots(written_at, uses, max_reuse)
    generator = tf.random.Generator.from_seed(seed)
    return int(choose_slot(sampling, eligible, uses, written_at, generator))


def test_eligible_slots_are_written_and_under_max_reuse():
    written_at = tf.constant(WRITTEN_AT, tf.int64)
    uses = tf.constant(USES, tf.int32)
    np.testing.assert_array_equal(
        eligible_slots(written_at, uses, None), [1, 1, 1, 1, 0]
    )
    np.testing.assert_array_equal(
        eligible_slots(written_at, uses, 1), [0, 1, 1, 0, 0]
    )


@pytest.mark.parametrize(
    "sampling, expected",
    [
        # Least used: slots 1 and 2 (0 uses; slot 4 is empty). Newest of
        # them: slot 2 (write 6); oldest: slot 1 (write 4).
        ("priority_lifo", 2),
        ("fifo", 1),
    ],
)
def test_least_used_then_by_age(sampling, expected):
    assert _choose(sampling) == expected


def test_uniform_draws_only_eligible_slots_equally():
    draws = [_choose("uniform", max_reuse=2, seed=seed) for seed in range(300)]
    counts = np.bincount(draws, minlength=5)
    # Eligible: slots 0, 1, 2 (slot 3 used 3 times, slot 4 empty).
    assert counts[3] == counts[4] == 0
    # Each: binomial(300, 1/3), mean 100, std 8.2; 60 is 5 std below.
    assert all(counts[:3] > 60)
