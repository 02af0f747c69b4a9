"""Tests of the weight memory and its files."""

import os

import numpy as np
import pytest

from localgrad.search import Snapshot, SupernetState, WeightMemory


def _snapshot(step, seed):
    rng = np.random.default_rng(seed)
    state = SupernetState(
        trainable=(
            rng.normal(size=(3, 2)).astype("float32"),
            rng.normal(size=(4,)).astype("float32"),
        ),
        non_trainable=(rng.normal(size=(2,)).astype("float32"),),
        velocities=(
            rng.normal(size=(3, 2)).astype("float32"),
            rng.normal(size=(4,)).astype("float32"),
        ),
    )
    return Snapshot(step, state)


def _assert_same(a, b):
    assert a.step == b.step
    for part_a, part_b in zip(a.state, b.state):
        assert len(part_a) == len(part_b)
        for x, y in zip(part_a, part_b):
            np.testing.assert_array_equal(x, y)


def test_memory_round_trips_through_files_and_saves_only_changes(tmp_path):
    memory = WeightMemory(capacity=3)
    for k in range(3):
        memory.add(_snapshot(10 * (k + 1), k))
    with pytest.raises(ValueError, match="full"):
        memory.add(_snapshot(40, 9))
    directory = str(tmp_path / "memory")
    first = memory.save(directory)
    memory.replace(1, _snapshot(21, 5))
    second = memory.save(directory)
    assert first[0] == second[0] and first[2] == second[2]
    assert first[1] != second[1]  # Only the changed slot got a new file.
    WeightMemory.remove_unlisted(directory, second)
    assert sorted(os.listdir(directory)) == sorted(second)
    loaded = WeightMemory.load(directory, second, capacity=3)
    assert loaded.steps == [10, 21, 30]
    for slot in range(3):
        _assert_same(loaded[slot], memory[slot])
    # Versions continue after a load: a new save never reuses a file name.
    loaded.replace(0, _snapshot(11, 6))
    third = loaded.save(directory)
    assert third[0] not in second


def test_sample_slot_is_seeded_and_refuses_an_empty_memory():
    memory = WeightMemory(capacity=5)
    with pytest.raises(ValueError, match="warm-up"):
        memory.sample_slot(np.random.default_rng(0))
    for k in range(5):
        memory.add(_snapshot(k, k))
    draws = [
        memory.sample_slot(np.random.default_rng([1, i])) for i in range(50)
    ]
    again = [
        memory.sample_slot(np.random.default_rng([1, i])) for i in range(50)
    ]
    assert draws == again
    assert set(draws) == set(range(5))


def test_missing_snapshot_file_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="delete the workdir's checkpoint"):
        WeightMemory.load(str(tmp_path), ["slot_000_00000001.npz"], 2)
    with pytest.raises(ValueError, match="capacity"):
        WeightMemory(0)
