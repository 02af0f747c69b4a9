"""Checkpoint files: named arrays written atomically and verified on read.

One `.npz` file holds the arrays and a JSON `meta` entry with a manifest
(each array's shape, dtype and SHA-256). `write_arrays` writes to a
temporary file in the same directory, flushes it to disk, then renames it
into place, so a kill at any moment leaves either the old file or the new
one, never a partial one. `read_arrays` loads without pickle and checks
every array against the manifest; anything unreadable or inconsistent is a
`DamagedFileError`.
"""

import hashlib
import json
import os
import tempfile
import zipfile

import numpy as np

from localgrad.errors import UserError

_META = "meta"
_ZIP_MAGIC = b"PK\x03\x04"  # How every .npz (zip) file starts.


class DamagedFileError(UserError):
    """A checkpoint file that cannot be read back as it was written."""


def write_arrays(path: str, arrays: dict, meta: dict) -> None:
    """Writes `arrays` and `meta` to `path` atomically.

    Example:

    ```python
    write_arrays("/tmp/run/state.npz", {"w": np.ones(3)}, {"step": 10})
    arrays, meta = read_arrays("/tmp/run/state.npz")
    ```

    Args:
        path: The file to write (replaced if it exists).
        arrays: Named numpy arrays (any name but `"meta"`).
        meta: JSON-serializable facts stored with them.

    Raises:
        ValueError: if an array is named `"meta"`.
    """
    if _META in arrays:
        raise UserError(f"An array may not be named {_META!r}.")
    arrays = {name: np.asarray(value) for name, value in arrays.items()}
    manifest = {name: _describe(value) for name, value in arrays.items()}
    content = dict(arrays)
    content[_META] = np.array(json.dumps(dict(meta, manifest=manifest)))
    directory = os.path.dirname(os.path.abspath(path))
    handle, temporary = tempfile.mkstemp(
        dir=directory, prefix="." + os.path.basename(path), suffix=".tmp"
    )
    try:
        with os.fdopen(handle, "wb") as file:
            np.savez(file, **content)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise
    _sync_directory(directory)


def read_arrays(path: str) -> tuple[dict, dict]:
    """Reads `(arrays, meta)` written by `write_arrays`, verified.

    Files written before manifests existed (no `manifest` in `meta`) are
    read without the checksum comparison.

    Args:
        path: The file to read.

    Returns:
        The arrays by name, and the meta without its manifest.

    Raises:
        DamagedFileError: if the file is missing, truncated, not an npz
            file, holds pickled objects, or its arrays do not match its
            manifest (names, shapes, dtypes or checksums).
    """
    try:
        with open(path, "rb") as file:
            start = file.read(len(_ZIP_MAGIC))
    except OSError as error:
        raise DamagedFileError(f"{path} cannot be read: {error}") from error
    if start != _ZIP_MAGIC:
        raise DamagedFileError(
            f"{path} is not an .npz archive (it starts with {start!r})."
        )
    try:
        with np.load(path, allow_pickle=False) as stored:
            arrays = {name: stored[name] for name in stored.files}
        meta = json.loads(str(arrays.pop(_META)))
    except (
        OSError,
        EOFError,
        KeyError,
        ValueError,
        zipfile.BadZipFile,
    ) as error:
        raise DamagedFileError(f"{path} cannot be read: {error}") from error
    if not isinstance(meta, dict):
        raise DamagedFileError(f"{path}: its meta entry is not a mapping.")
    manifest = meta.pop("manifest", None)
    if manifest is None:
        return arrays, meta
    if set(manifest) != set(arrays):
        raise DamagedFileError(
            f"{path} holds arrays {sorted(arrays)} but its manifest lists "
            f"{sorted(manifest)}."
        )
    for name, value in arrays.items():
        if _describe(value) != manifest[name]:
            raise DamagedFileError(
                f"{path}: array {name!r} does not match its manifest "
                f"(expected {manifest[name]}, found {_describe(value)})."
            )
    return arrays, meta


def _describe(value):
    value = np.ascontiguousarray(value)
    return {
        "shape": list(value.shape),
        "dtype": value.dtype.str,
        "sha256": hashlib.sha256(value.tobytes()).hexdigest(),
    }


def _sync_directory(directory):
    """Makes a rename in `directory` durable (where the OS allows it)."""
    try:
        handle = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(handle)
    except OSError:
        pass
    finally:
        os.close(handle)
