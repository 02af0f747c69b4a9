"""Tests of localgrad.checkpoint_files: atomic writes, verified reads."""

import json
import os
import zipfile

import numpy as np
import pytest

from localgrad import checkpoint_files
from localgrad.checkpoint_files import DamagedFileError


def _arrays():
    return {"w": np.arange(6, dtype="float32").reshape(2, 3), "i": np.int64(7)}


def test_round_trip(tmp_path):
    path = str(tmp_path / "state.npz")
    checkpoint_files.write_arrays(path, _arrays(), {"step": 3})
    arrays, meta = checkpoint_files.read_arrays(path)
    assert meta == {"step": 3}
    assert sorted(arrays) == ["i", "w"]
    np.testing.assert_array_equal(arrays["w"], _arrays()["w"])
    assert os.listdir(tmp_path) == ["state.npz"]  # No temporary left.


def test_random_bytes_are_damage_not_a_numpy_error(tmp_path):
    path = tmp_path / "state.npz"
    path.write_bytes(np.random.default_rng(0).bytes(100))
    with pytest.raises(DamagedFileError, match="state.npz is not an .npz"):
        checkpoint_files.read_arrays(str(path))


def test_truncated_file_is_damage(tmp_path):
    path = tmp_path / "state.npz"
    checkpoint_files.write_arrays(str(path), _arrays(), {})
    content = path.read_bytes()
    path.write_bytes(content[: len(content) // 2])
    with pytest.raises(DamagedFileError):
        checkpoint_files.read_arrays(str(path))


def _rewrite(path, arrays, meta):
    """An npz written by hand, bypassing write_arrays."""
    with open(path, "wb") as file:
        np.savez(file, meta=np.array(json.dumps(meta)), **arrays)


def test_arrays_must_match_the_manifest(tmp_path):
    path = str(tmp_path / "state.npz")
    checkpoint_files.write_arrays(path, _arrays(), {"step": 1})
    with np.load(path) as stored:
        meta = json.loads(str(stored["meta"]))
    changed = _arrays()
    changed["w"] = changed["w"] + 1  # Same shape, other content.
    _rewrite(path, changed, meta)
    with pytest.raises(DamagedFileError, match="'w' does not match"):
        checkpoint_files.read_arrays(path)
    missing = _arrays()
    del missing["i"]
    _rewrite(path, missing, meta)
    with pytest.raises(DamagedFileError, match="manifest lists"):
        checkpoint_files.read_arrays(path)


def test_pickled_objects_are_refused_not_loaded(tmp_path):
    path = str(tmp_path / "state.npz")
    with open(path, "wb") as file:
        np.savez(file, meta=np.array([{"step": 1}], dtype=object))
    with pytest.raises(DamagedFileError, match="pickle"):
        checkpoint_files.read_arrays(path)


def test_files_without_a_manifest_are_read(tmp_path):
    path = str(tmp_path / "old.npz")
    _rewrite(path, _arrays(), {"step": 2})
    arrays, meta = checkpoint_files.read_arrays(path)
    assert meta == {"step": 2}
    np.testing.assert_array_equal(arrays["w"], _arrays()["w"])


def test_failed_write_keeps_the_old_file(tmp_path, monkeypatch):
    path = str(tmp_path / "state.npz")
    checkpoint_files.write_arrays(path, _arrays(), {"step": 1})

    def savez_then_fail(file, **arrays):
        with zipfile.ZipFile(file, "w") as archive:
            archive.writestr("w.npy", b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", savez_then_fail)
    with pytest.raises(OSError, match="disk full"):
        checkpoint_files.write_arrays(path, _arrays(), {"step": 2})
    assert os.listdir(tmp_path) == ["state.npz"]
    monkeypatch.undo()
    assert checkpoint_files.read_arrays(path)[1] == {"step": 1}


def test_meta_is_a_reserved_name(tmp_path):
    with pytest.raises(ValueError, match="'meta'"):
        checkpoint_files.write_arrays(
            str(tmp_path / "x.npz"), {"meta": np.zeros(1)}, {}
        )
