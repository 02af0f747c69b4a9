"""Reader for the IDX format of the original MNIST and Fashion-MNIST files.

An IDX file is a 4-byte magic number (two zero bytes, a type code, the number
of dimensions), one big-endian int32 per dimension, then the values in C
order, big-endian. The published files are gzip-compressed.
"""

import gzip
import os
import zlib

import numpy as np

from localgrad.errors import UserError

_TYPE_CODES = {
    0x08: np.dtype("u1"),
    0x09: np.dtype("i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def _read_bytes(path: str) -> bytes:
    if path.endswith(".gz"):
        try:
            with gzip.open(path, "rb") as file:
                return file.read()
        except (OSError, EOFError, zlib.error) as error:
            raise UserError(
                f"{path} is not a complete gzip file ({error}). Re-download "
                "or reinstall it (for Fashion-MNIST: `apt-get install "
                "--reinstall dataset-fashion-mnist`)."
            ) from error
    with open(path, "rb") as file:
        return file.read()


def read_idx(path: str) -> np.ndarray:
    """Reads one IDX file (gzip-compressed if its name ends in `.gz`).

    Example:

    ```python
    images = read_idx("/usr/share/datasets/fashion-mnist/"
                      "train-images-idx3-ubyte.gz")
    images.shape, images.dtype  # (60000, 28, 28), uint8
    ```

    Args:
        path: Path to the file.

    Returns:
        The values as a numpy array in native byte order, shaped as the
        file's header says.

    Raises:
        FileNotFoundError: if the file does not exist.
        ValueError: if the file is not IDX (bad magic number), is truncated
            or has trailing bytes, or is a broken gzip file.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"IDX file not found: {path}")
    data = _read_bytes(path)
    if len(data) < 4:
        raise UserError(
            f"{path} is truncated: {len(data)} bytes, too short for an IDX "
            "header."
        )
    zero_0, zero_1, type_code, ndim = data[0], data[1], data[2], data[3]
    if zero_0 or zero_1 or type_code not in _TYPE_CODES or ndim == 0:
        raise UserError(
            f"{path} is not an IDX file: bad magic number "
            f"0x{int.from_bytes(data[:4], 'big'):08x} (expected two zero "
            "bytes, a type code in "
            f"{[hex(code) for code in _TYPE_CODES]} and a dimension count, "
            "e.g. 0x00000803 for images, 0x00000801 for labels)."
        )
    header_size = 4 + 4 * ndim
    if len(data) < header_size:
        raise UserError(
            f"{path} is truncated: its header announces {ndim} dimensions "
            f"but the file has only {len(data)} bytes."
        )
    shape = tuple(
        int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)
    )
    dtype = _TYPE_CODES[type_code]
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    actual = len(data) - header_size
    if actual != expected:
        problem = "truncated" if actual < expected else "too long"
        raise UserError(
            f"{path} is {problem}: its header announces shape {shape} "
            f"({expected} bytes of data) but it holds {actual} bytes. "
            "Re-download or reinstall the file."
        )
    values = np.frombuffer(data, dtype=dtype, offset=header_size)
    return values.reshape(shape).astype(dtype.newbyteorder("="), copy=False)
