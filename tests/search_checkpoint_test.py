"""Tests of the search checkpoint (memory files + one state file)."""

import os

import numpy as np
import pytest

from localgrad.search import Snapshot, SupernetState, WeightMemory
from localgrad.search.checkpoint import SearchCheckpoint


def _memory(values):
    memory = WeightMemory(capacity=4)
    for step, value in enumerate(values):
        array = np.full((2,), value, np.float32)
        memory.add(Snapshot(step, SupernetState((array,), (), (array,))))
    return memory


def test_checkpoint_round_trips_and_keeps_only_current_files(tmp_path):
    checkpoint = SearchCheckpoint(str(tmp_path / "checkpoint"))
    assert not checkpoint.exists()
    memory = _memory([1.0, 2.0])
    checkpoint.save(memory, {"alpha": np.eye(2)}, {"meta_iteration": 3})
    memory.replace(0, Snapshot(7, memory[1].state))
    checkpoint.save(memory, {"alpha": 2 * np.eye(2)}, {"meta_iteration": 4})
    assert checkpoint.exists()
    loaded, arrays, meta = checkpoint.load(capacity=4)
    assert meta["meta_iteration"] == 4
    np.testing.assert_array_equal(arrays["alpha"], 2 * np.eye(2))
    assert loaded.steps == [7, 1]
    np.testing.assert_array_equal(loaded[0].state.trainable[0], [2.0, 2.0])
    assert len(os.listdir(checkpoint.memory_directory)) == 2


def test_a_damaged_state_file_is_a_clear_error(tmp_path):
    checkpoint = SearchCheckpoint(str(tmp_path))
    with open(checkpoint.state_path, "w") as file:
        file.write("not numpy")
    with pytest.raises(ValueError, match="start afresh"):
        checkpoint.load(capacity=2)


def test_damaged_snapshot_or_state_is_a_clear_error(tmp_path):
    checkpoint = SearchCheckpoint(str(tmp_path))
    checkpoint.save(_memory([1.0]), {"alpha": np.eye(2)}, {"step": 1})
    (snapshot,) = os.listdir(checkpoint.memory_directory)
    path = os.path.join(checkpoint.memory_directory, snapshot)
    with open(path, "wb") as file:
        file.write(np.random.default_rng(0).bytes(100))
    with pytest.raises(ValueError, match="snapshot .* is not an .npz archive"):
        checkpoint.load(capacity=2)
    with open(checkpoint.state_path, "r+b") as file:
        file.truncate(40)
    with pytest.raises(ValueError, match="search checkpoint is damaged"):
        checkpoint.load(capacity=2)
