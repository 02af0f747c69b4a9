"""Tests of the search's position-addressed batches."""

import numpy as np
import pytest

from localgrad.search.batches import BatchSampler, shift_and_flip


def _data(count=50):
    x = np.arange(count * 4, dtype=np.float32).reshape(count, 2, 2, 1)
    return x, np.arange(count) % 10


def test_batches_depend_only_on_stream_and_index():
    x, y = _data()
    first = BatchSampler(x, y, batch_size=8, seed=3)
    second = BatchSampler(x, y, batch_size=8, seed=3)
    a = first.batch(stream=1, index=9)
    first.batch(stream=0, index=2)  # Other draws in between change nothing.
    b = second.batch(stream=1, index=9)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    c = second.batch(stream=2, index=9)
    assert not np.array_equal(a[0], c[0])


def test_an_epoch_visits_every_example_at_most_once():
    x, y = _data(50)
    sampler = BatchSampler(x, y, batch_size=8, seed=0)
    assert sampler.batches_per_epoch == 6
    seen = np.concatenate(
        [sampler.batch(0, i)[0][:, 0, 0, 0] for i in range(6)]
    )
    assert len(set(seen.tolist())) == 48
    next_epoch = np.concatenate(
        [sampler.batch(0, i)[0][:, 0, 0, 0] for i in range(6, 12)]
    )
    assert not np.array_equal(next_epoch, seen)  # Reshuffled.


def test_augmentation_is_seeded_and_keeps_shapes():
    images = np.random.default_rng(0).normal(size=(6, 8, 8, 3))
    a = shift_and_flip(images, np.random.default_rng(1))
    b = shift_and_flip(images, np.random.default_rng(1))
    assert a.shape == images.shape
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, images)


def test_bad_inputs_are_refused():
    x, y = _data(5)
    with pytest.raises(ValueError, match="cannot fill one batch"):
        BatchSampler(x, y, batch_size=8)
    with pytest.raises(ValueError, match="different lengths"):
        BatchSampler(x, y[:4], batch_size=2)
    with pytest.raises(ValueError, match="augment=False"):
        BatchSampler(np.zeros((5, 3)), y, batch_size=2, augment=True)
