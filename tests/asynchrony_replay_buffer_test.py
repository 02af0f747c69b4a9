"""Tests of localgrad.ReplayBuffer against hand-worked write/read sequences.

Every batch written is a constant: features and labels of batch "n" are
all n, so a sample names the batch it returned.
"""

import threading

import numpy as np
import pytest
import tensorflow as tf

import localgrad
from localgrad.asynchrony import UNBOUNDED_HISTOGRAM_BINS, ReplayBuffer

FEATURES = tf.TensorSpec((4, 3))
LABELS = tf.TensorSpec((4,), tf.int32)


def _buffer(buffer_size=3, **kwargs):
    return ReplayBuffer(buffer_size, FEATURES, LABELS, **kwargs)


def _batch(name, rows=4):
    return tf.fill([rows, 3], float(name)), tf.fill([rows], name)


def _run(buffer, operations, compiled):
    """Runs ("w", name) writes and ("r",) reads; returns what reads got.

    A read gives the batch name it found, or None. With `compiled`, the
    whole sequence is one `tf.function`.
    """

    def sequence():
        names = []
        for operation in operations:
            if operation[0] == "w":
                buffer.write(*_batch(operation[1]))
                continue
            sample = buffer.sample()
            label = tf.reduce_max(tf.concat([sample.labels, [-1]], 0))
            names.append(tf.where(sample.found, label, -1))
        return tf.stack(names)

    if compiled:
        sequence = tf.function(sequence)
    return [None if n == -1 else int(n) for n in sequence().numpy()]


def _statistics(buffer):
    return {k: np.asarray(v).tolist() for k, v in buffer.statistics().items()}


@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "function"])
def test_priority_lifo_with_max_reuse_by_hand(compiled):
    buffer = _buffer(3, max_reuse=2)
    operations = [("w", 10), ("w", 11)] + [("r",)] * 5
    operations += [("w", 12), ("w", 13)] + [("r",)] * 5
    # 10, 11 fill slots 0, 1. Reads: the least used, then the newest: 11,
    # 10, 11 (both used once), 10, then both are at max_reuse: nothing.
    # 12 fills slot 2, 13 overwrites the oldest (10, read twice). Unused:
    # 13 and 12, newest first; then both used once: 13, 12; then nothing.
    expected = [11, 10, 11, 10, None, 13, 12, 13, 12, None]
    assert _run(buffer, operations, compiled) == expected
    assert _statistics(buffer) == {
        "writes": 4,
        "reads": 8,
        "skips": 2,
        "filled": 3,
        "available": 0,
        "unread": 0,
        "uses_histogram": [0, 0, 1],  # 10 left after 2 reads
    }


@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "function"])
def test_priority_lifo_and_fifo_orders_by_hand(compiled):
    operations = [("w", 1), ("w", 2), ("w", 3)] + [("r",)] * 4
    operations += [("w", 4)] + [("r",)] * 3
    lifo, fifo = _buffer(3), _buffer(3, sampling="fifo")
    # LIFO: 3 2 1 unused newest first, then 3 (all used once, newest).
    # 4 overwrites 1 (oldest write); 4 is unused; then used once: 4 (newer
    # than 2); then 2.
    assert _run(lifo, operations, compiled) == [3, 2, 1, 3, 4, 4, 2]
    # FIFO: 1 2 3 in write order, then 1 again. 4 overwrites 1; 4 is
    # unused; then the oldest of those used once: 2, then 3.
    assert _run(fifo, operations, compiled) == [1, 2, 3, 1, 4, 2, 3]
    # Batch 1 left after 1 read (LIFO), after 2 (FIFO).
    zeros = [0] * (UNBOUNDED_HISTOGRAM_BINS - 3)
    assert _statistics(lifo)["uses_histogram"] == [0, 1, 0] + zeros
    assert _statistics(fifo)["uses_histogram"] == [0, 0, 1] + zeros


def test_writes_overwrite_the_oldest_slot():
    buffer = _buffer(2)
    slots = [int(buffer.write(*_batch(name))) for name in range(5)]
    assert slots == [0, 1, 0, 1, 0]
    # Batches 3 and 4 remain; 0, 1, 2 left unread.
    assert _run(buffer, [("r",)] * 2, compiled=False) == [4, 3]
    assert _statistics(buffer)["uses_histogram"][:2] == [3, 0]


def test_empty_buffer_returns_nothing_and_counts_a_skip():
    buffer = _buffer(2)
    sample = buffer.sample()
    assert not bool(sample.found) and int(sample.slot) == -1
    assert sample.features.shape == (0, 3) and sample.labels.shape == (0,)
    assert _statistics(buffer)["skips"] == 1


def test_partial_batch_keeps_its_rows_and_weights():
    buffer = _buffer(2)
    buffer.write(*_batch(5))
    features, labels = _batch(6, rows=2)
    buffer.write(features, labels, sample_weight=tf.constant([0.5, 2.0]))
    sample = buffer.sample()  # the newest: the partial batch
    np.testing.assert_array_equal(sample.features, np.full((2, 3), 6.0))
    np.testing.assert_array_equal(sample.labels, [6, 6])
    np.testing.assert_array_equal(sample.sample_weight, [0.5, 2.0])
    full = buffer.sample()
    assert full.features.shape == (4, 3)
    np.testing.assert_array_equal(full.sample_weight, np.ones(4))


def test_refuses_batches_larger_than_the_slots():
    buffer = _buffer(2)
    with pytest.raises(ValueError, match="1 to 4 rows; got 5"):
        buffer.write(*_batch(1, rows=5))
    unknown_rows = [tf.TensorSpec((None, 3)), tf.TensorSpec((None,), tf.int32)]
    too_many = tf.function(buffer.write, input_signature=unknown_rows)
    with pytest.raises(tf.errors.InvalidArgumentError, match="at most 4"):
        too_many(*_batch(1, rows=5))
    with pytest.raises(tf.errors.InvalidArgumentError, match="same number"):
        buffer.write(tf.zeros([4, 3]), tf.zeros([3], tf.int32))


def test_uniform_is_deterministic_for_a_seed_and_reads_eligible_slots():
    def slots(seed, max_reuse=None):
        buffer = _buffer(4, sampling="uniform", seed=seed, max_reuse=max_reuse)
        for name in range(3):  # slots 0, 1, 2 written, slot 3 empty
            buffer.write(*_batch(name))
        return [int(buffer.sample().slot) for _ in range(30)], buffer

    first, _ = slots(seed=1)
    assert first == slots(seed=1)[0]
    assert first != slots(seed=2)[0]
    assert set(first) == {0, 1, 2}
    limited, buffer = slots(seed=1, max_reuse=2)
    # 3 batches × 2 reads, then nothing (-1) for the other 24 samples.
    assert sorted(limited[:6]) == [0, 0, 1, 1, 2, 2]
    assert limited[6:] == [-1] * 24
    assert _statistics(buffer)["skips"] == 24
    buffer.clear()  # re-seeds: the same writes give the same slots again
    for name in range(3):
        buffer.write(*_batch(name))
    assert [int(buffer.sample().slot) for _ in range(6)] == limited[:6]


def test_clear_empties_the_slots_and_statistics():
    buffer = _buffer(2)
    buffer.write(*_batch(1))
    buffer.sample()
    buffer.clear()
    assert not bool(buffer.sample().found)
    statistics = _statistics(buffer)
    assert (statistics["writes"], statistics["reads"]) == (0, 0)
    assert statistics["skips"] == 1 and statistics["filled"] == 0


def test_slots_live_on_the_given_logical_device():
    buffer = _buffer(2, device="/device:CPU:1")
    assert buffer.device.endswith("device:CPU:1")
    assert all(v.device.endswith("device:CPU:1") for v in buffer._slots)
    with tf.device("/device:CPU:0"):
        features, labels = _batch(7)
    buffer.write(features, labels)
    sample = buffer.sample()
    assert sample.features.device.endswith("device:CPU:1")
    np.testing.assert_array_equal(sample.labels, [7] * 4)
    assert _buffer(1, device="/cpu:0").device.endswith("CPU:0")
    with pytest.raises(ValueError, match="'/device:CPU:7' does not exist"):
        _buffer(1, device="/device:CPU:7")


def test_nested_features_round_trip():
    spec = {"features": FEATURES, "label_side": tf.TensorSpec((4, 2))}
    buffer = ReplayBuffer(2, spec, LABELS, sampling="fifo")
    values = {"features": tf.ones([3, 3]), "label_side": tf.fill([3, 2], 2.0)}
    buffer.write(values, tf.fill([3], 1))
    sample = buffer.sample()
    np.testing.assert_array_equal(
        sample.features["label_side"], values["label_side"]
    )
    assert sample.features["features"].shape == (3, 3)


def test_concurrent_producer_and_consumer_see_whole_batches():
    buffer = _buffer(3, device="/device:CPU:1")
    write = tf.function(lambda x, y: buffer.write(x, y))
    sample = tf.function(buffer.sample)
    sample(), buffer.clear()  # traced before the threads start
    batches, seen, samples = 150, [], []
    produced = threading.Event()

    def produce():
        for name in range(batches):
            write(*_batch(name))
        produced.set()

    def consume():
        # Samples while the producer writes, and until it found a batch.
        while not (produced.is_set() and seen):
            got = sample()
            samples.append(bool(got.found))
            if samples[-1]:
                seen.append((got.features.numpy(), got.labels.numpy()))

    _in_threads(produce, consume)
    statistics = _statistics(buffer)
    assert statistics["writes"] == batches
    assert statistics["reads"] == len(seen) == sum(samples)
    assert statistics["skips"] == len(samples) - len(seen)
    for features, labels in seen:  # never half of one batch, half another
        assert np.all(features == labels[0]) and np.all(labels == labels[0])


def _in_threads(*targets):
    threads = [threading.Thread(target=target) for target in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def test_concurrent_writers_each_get_their_own_slot():
    buffer = _buffer(400, device="/device:CPU:1")
    write = tf.function(lambda x, y: buffer.write(x, y))
    write(*_batch(0)), buffer.clear()  # traced before the threads start

    def produce():
        for name in range(200):
            write(*_batch(name))

    _in_threads(produce, produce)
    statistics = _statistics(buffer)
    # Without the critical section, two writes can read the same write
    # count and land in the same slot: fewer than 400 slots filled.
    assert statistics["writes"] == 400 and statistics["filled"] == 400


def test_concurrent_readers_never_share_a_single_use_batch():
    buffer = _buffer(200, max_reuse=1, device="/device:CPU:1")
    sample = tf.function(buffer.sample)
    sample()
    for name in range(200):
        buffer.write(*_batch(name))
    slots = []

    def consume():
        for _ in range(150):
            slots.append(int(sample().slot))

    _in_threads(consume, consume)
    read = [slot for slot in slots if slot >= 0]
    assert sorted(read) == list(range(200))  # each batch read exactly once
    statistics = _statistics(buffer)
    assert (statistics["reads"], statistics["skips"]) == (200, 101)


def test_is_reachable_from_the_package():
    assert localgrad.ReplayBuffer is ReplayBuffer


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"buffer_size": 0}, "buffer_size must be an integer >= 1"),
        ({"buffer_size": 2.0}, "buffer_size must be an integer >= 1"),
        ({"sampling": "lifo"}, "Unknown sampling 'lifo'"),
        ({"max_reuse": 0}, "max_reuse must be None"),
        ({"max_reuse": 1.5}, "max_reuse must be None"),
        ({"max_reuse": True}, "max_reuse must be None"),
        ({"label_spec": tf.TensorSpec((5,), tf.int32)}, "same known leading"),
        ({"feature_spec": tf.TensorSpec((None, 3))}, "same known leading"),
    ],
)
def test_bad_arguments_are_clear_value_errors(kwargs, message):
    arguments = {
        "buffer_size": 3,
        "feature_spec": FEATURES,
        "label_spec": LABELS,
    } | kwargs
    with pytest.raises(ValueError, match=message):
        ReplayBuffer(**arguments)


def test_refuses_a_distribution_strategy_scope():
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    with strategy.scope(), pytest.raises(ValueError, match="outside"):
        _buffer(2)


def test_refuses_a_creation_inside_a_function():
    with pytest.raises(ValueError, match="eagerly"):
        tf.function(lambda: _buffer(2))()
