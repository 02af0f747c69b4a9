"""The published files of MNIST and Fashion-MNIST, recognised by checksum.

MNIST's and Fashion-MNIST's IDX files have the same names and shapes, so a
`data_dir` holding the wrong ones would train on the other data set
without a word. `check_idx_file` recognises a known file by the MD5 of
its `.gz` file (the checksums both data sets publish) or, for a copy
compressed again (Debian's `dataset-fashion-mnist` is one), by the
SHA-256 of its content, and refuses a file of another data set or split.
Files it does not know (a user's own data) pass unchecked.

Example:

```python
check_idx_file("mnist", "/usr/share/datasets/fashion-mnist/"
               "train-images-idx3-ubyte.gz", "train-images-idx3-ubyte")
# ValueError: ... is Fashion-MNIST's train-images-idx3-ubyte file, not
# MNIST's ...
```
"""

import gzip
import hashlib

from localgrad.errors import UserError

NAMES = {"mnist": "MNIST", "fashion_mnist": "Fashion-MNIST"}
# (data set, file stem): (MD5 of the published .gz file, SHA-256 of its
# content). MD5s: as the data sets' authors publish them. Fashion-MNIST's
# content SHA-256s: computed from the files of Debian's
# dataset-fashion-mnist package (the published data, compressed again).
KNOWN_FILES = {
    ("mnist", "train-images-idx3-ubyte"): (
        "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        None,
    ),
    ("mnist", "train-labels-idx1-ubyte"): (
        "d53e105ee54ea40749a09fcbcd1e9432",
        None,
    ),
    ("mnist", "t10k-images-idx3-ubyte"): (
        "9fb629c4189551a2d022fa330f9573f3",
        None,
    ),
    ("mnist", "t10k-labels-idx1-ubyte"): (
        "ec29112dd5afa0611ce80d1b7f02629c",
        None,
    ),
    ("fashion_mnist", "train-images-idx3-ubyte"): (
        "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    ),
    ("fashion_mnist", "train-labels-idx1-ubyte"): (
        "25c81989df183df01b3e8a0aad5dffbe",
        "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    ),
    ("fashion_mnist", "t10k-images-idx3-ubyte"): (
        "bef4ecab320f06d8554ea6380940ec79",
        "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    ),
    ("fashion_mnist", "t10k-labels-idx1-ubyte"): (
        "bb300cfdad3c16e7a12a480ee83cd310",
        "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
    ),
}


def identify(path: str) -> tuple[str, str] | None:
    """The (data set, file stem) whose published file `path` is, or None."""
    with open(path, "rb") as file:
        raw = file.read()
    md5 = hashlib.md5(raw, usedforsecurity=False).hexdigest()
    content = gzip.decompress(raw) if path.endswith(".gz") else raw
    sha256 = hashlib.sha256(content).hexdigest()
    for key, (known_md5, known_sha256) in KNOWN_FILES.items():
        if md5 == known_md5 or sha256 == known_sha256:
            return key
    return None


def check_idx_file(name: str, path: str, stem: str) -> None:
    """Refuses `path` if it is a known file other than `name`'s `stem`.

    Args:
        name: The data set the file is read as (`"fashion_mnist"`).
        path: The IDX file (`.gz` or not).
        stem: The file it is read as (`"train-images-idx3-ubyte"`).

    Raises:
        ValueError: if `path` is another data set's or split's file,
            naming both.
    """
    known = identify(path)
    if known is None or known == (name, stem):
        return
    other, other_stem = known
    raise UserError(
        f"{path} is {NAMES[other]}'s {other_stem} file, not "
        f"{NAMES.get(name, name)}'s {stem}: point data_dir at "
        f"{NAMES.get(name, name)}'s files"
        + (f", or train on dataset={other}." if other != name else ".")
    )
