"""MNIST's and Fashion-MNIST's files are told apart by their checksums."""

import gzip
import hashlib
import os
import shutil

import pytest
from data_test import REAL_FASHION_DIR, write_fake_mnist

from localgrad import data
from localgrad.data import checksums

STEMS = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


def _md5(path):
    with open(path, "rb") as file:
        return hashlib.md5(file.read(), usedforsecurity=False).hexdigest()


@pytest.fixture
def files_published_as_mnist(tmp_path, monkeypatch):
    """Fake IDX files, and a table in which they are MNIST's published ones."""
    directory = write_fake_mnist(str(tmp_path / "mnist"))
    known = {
        ("mnist", stem): (_md5(os.path.join(directory, stem + ".gz")), None)
        for stem in STEMS
    }
    monkeypatch.setattr(checksums, "KNOWN_FILES", known)
    return directory


def test_mnist_files_given_as_fashion_mnist_are_refused(
    files_published_as_mnist,
):
    with pytest.raises(ValueError) as refused:
        data.load_arrays("fashion_mnist", "train", files_published_as_mnist)
    assert str(refused.value) == (
        f"{files_published_as_mnist}/train-images-idx3-ubyte.gz is MNIST's "
        "train-images-idx3-ubyte file, not Fashion-MNIST's "
        "train-images-idx3-ubyte: point data_dir at Fashion-MNIST's files, "
        "or train on dataset=mnist."
    )
    x, _ = data.load_arrays("mnist", "train", files_published_as_mnist)
    assert len(x) == 200  # As MNIST, the same files load.


def test_a_file_of_the_other_split_is_refused(files_published_as_mnist):
    directory = files_published_as_mnist
    os.replace(
        os.path.join(directory, "t10k-labels-idx1-ubyte.gz"),
        os.path.join(directory, "moved.gz"),
    )
    shutil.copy(
        os.path.join(directory, "train-labels-idx1-ubyte.gz"),
        os.path.join(directory, "t10k-labels-idx1-ubyte.gz"),
    )
    with pytest.raises(ValueError, match="MNIST's train-labels-idx1-ubyte"):
        data.load_arrays("mnist", "test", directory)


def test_unknown_files_pass_unchecked(tmp_path):
    directory = write_fake_mnist(str(tmp_path / "own"))
    for stem in STEMS:
        assert checksums.identify(os.path.join(directory, stem + ".gz")) is None
    x, _ = data.load_arrays("fashion_mnist", "train", directory)
    assert len(x) == 200


def test_fashion_mnist_is_known_by_content_however_compressed(tmp_path):
    if not os.path.isdir(REAL_FASHION_DIR):
        pytest.skip("needs apt-get install -y dataset-fashion-mnist")
    for stem in STEMS:
        with gzip.open(os.path.join(REAL_FASHION_DIR, stem + ".gz")) as file:
            content = file.read()
        again = tmp_path / (stem + ".gz")
        again.write_bytes(gzip.compress(content, compresslevel=1, mtime=0))
        assert checksums.identify(str(again)) == ("fashion_mnist", stem)
    with pytest.raises(ValueError, match="is Fashion-MNIST's train-images"):
        data.load_arrays("mnist", "train", str(tmp_path))
    with pytest.raises(ValueError, match="or train on dataset=fashion_mnist"):
        data.load_arrays("mnist", "train", REAL_FASHION_DIR)
