"""Tests for localgrad.data: IDX reader, sources, splits, augmentation."""

import gzip
import os
import struct
import sys

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from localgrad import data
from localgrad.data import augment as augment_lib

REAL_FASHION_DIR = "/usr/share/datasets/fashion-mnist"
FASHION_MEAN, FASHION_STD = 0.2860, 0.3530
IDX_TYPE_CODES = {np.uint8: 0x08, np.int32: 0x0C, np.float32: 0x0D}


def write_idx(path, array, compress=True):
    """Writes `array` in the IDX format, independently of the reader."""
    array = np.asarray(array)
    header = bytes([0, 0, IDX_TYPE_CODES[array.dtype.type], array.ndim])
    header += b"".join(struct.pack(">i", size) for size in array.shape)
    payload = header + array.astype(array.dtype.newbyteorder(">")).tobytes()
    opener = gzip.open if compress else open
    with opener(path, "wb") as file:
        file.write(payload)


def write_fake_mnist(directory, num_train=200, num_test=30):
    """IDX files whose image i encodes i in its first two pixels."""
    os.makedirs(directory, exist_ok=True)
    for prefix, count in (("train", num_train), ("t10k", num_test)):
        index = np.arange(count)
        images = np.zeros((count, 28, 28), np.uint8)
        images[:, 0, 0] = index % 256
        images[:, 0, 1] = index // 256
        images[:, 5:20, 5:20] = (index[:, None, None] * 7) % 256
        write_idx(
            os.path.join(directory, f"{prefix}-images-idx3-ubyte.gz"), images
        )
        write_idx(
            os.path.join(directory, f"{prefix}-labels-idx1-ubyte.gz"),
            (index % 10).astype(np.uint8),
        )
    return directory


def example_indices(x):
    """Recovers the index written by `write_fake_mnist` from normalized x."""
    pixels = np.round((x[:, 0, :2, 0] * FASHION_STD + FASHION_MEAN) * 255)
    return (pixels[:, 0] + 256 * pixels[:, 1]).astype(int)


def collect(dataset):
    batches = list(dataset.as_numpy_iterator())
    return (
        np.concatenate([b[0] for b in batches]),
        np.concatenate([b[1] for b in batches]),
    )


@pytest.fixture
def fake_dir(tmp_path):
    return write_fake_mnist(str(tmp_path / "idx"))


# --- IDX reader, on files the test writes --------------------------------


@pytest.mark.parametrize("compress", [True, False])
@pytest.mark.parametrize(
    "array",
    [
        np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4),
        np.array([3, 1, 4, 1, 5], np.uint8),
        np.array([[-70000, 2], [3, 2**30]], np.int32),
        np.array([0.5, -1.25], np.float32),
    ],
    ids=["images", "labels", "int32", "float32"],
)
def test_read_idx_round_trip(tmp_path, array, compress):
    path = str(tmp_path / ("a.idx.gz" if compress else "a.idx"))
    write_idx(path, array, compress=compress)
    result = data.read_idx(path)
    assert result.shape == array.shape
    assert result.dtype == array.dtype
    np.testing.assert_array_equal(result, array)


def _corrupt(path, how):
    raw = struct.pack(">BBBBiii", 0, 0, 8, 3, 2, 2, 2) + bytes(range(8))
    if how == "bad_magic":
        raw = b"\x1f\x00\x08\x03" + raw[4:]
    elif how == "truncated_data":
        raw = raw[:-3]
    elif how == "truncated_header":
        raw = raw[:9]
    elif how == "trailing_bytes":
        raw = raw + b"\x00"
    compressed = gzip.compress(raw)
    if how == "broken_gzip":
        compressed = compressed[: len(compressed) // 2]
    with open(path, "wb") as file:
        file.write(compressed)


@pytest.mark.parametrize(
    "how, message",
    [
        ("bad_magic", "bad magic number 0x1f000803"),
        ("truncated_data", "truncated"),
        ("truncated_header", "truncated"),
        ("trailing_bytes", "too long"),
        ("broken_gzip", "not a complete gzip file"),
    ],
)
def test_read_idx_corrupt_file_clear_error(tmp_path, how, message):
    path = str(tmp_path / "train-images-idx3-ubyte.gz")
    _corrupt(path, how)
    with pytest.raises(ValueError, match=message) as error:
        data.read_idx(path)
    assert path in str(error.value)


def test_load_corrupt_idx_fails_at_load_time(fake_dir):
    path = os.path.join(fake_dir, "train-labels-idx1-ubyte.gz")
    _corrupt(path, "bad_magic")
    with pytest.raises(ValueError, match="bad magic number") as error:
        data.load("fashion_mnist", "train", 8, data_dir=fake_dir)
    assert path in str(error.value)


def test_load_idx_mismatched_counts(fake_dir):
    write_idx(
        os.path.join(fake_dir, "t10k-labels-idx1-ubyte.gz"),
        np.zeros(5, np.uint8),
    )
    with pytest.raises(ValueError, match="30 images .* 5 labels"):
        data.load("mnist", "test", 8, data_dir=fake_dir)


def test_idx_loader_values_shapes_dtypes(fake_dir):
    x, y = collect(data.load("fashion_mnist", "test", 8, data_dir=fake_dir))
    assert x.shape == (30, 28, 28, 1) and x.dtype == np.float32
    assert y.dtype == np.int32
    np.testing.assert_array_equal(y, np.arange(30) % 10)
    np.testing.assert_array_equal(example_indices(x), np.arange(30))
    expected = ((np.arange(30) * 7) % 256 / 255.0 - FASHION_MEAN) / FASHION_STD
    np.testing.assert_allclose(x[:, 10, 10, 0], expected, rtol=1e-5)


# --- The real Fashion-MNIST files ----------------------------------------


def test_fashion_mnist_real_files_or_clear_error():
    if os.path.isdir(REAL_FASHION_DIR):
        x, y = data.load_arrays("fashion_mnist", "train")
        assert x.shape == (60_000, 28, 28, 1) and x.dtype == np.float32
        assert abs(x.mean()) < 0.01 and abs(x.std() - 1.0) < 0.01
        np.testing.assert_array_equal(np.bincount(y), [6000] * 10)
        batch = next(iter(data.load("fashion_mnist", "test", 500)))
        assert batch[0].shape == (500, 28, 28, 1)
        assert batch[1].dtype == tf.int32
    else:
        with pytest.raises(FileNotFoundError) as error:
            data.load("fashion_mnist", "train", 32)
        assert REAL_FASHION_DIR in str(error.value)
        assert "apt-get install -y dataset-fashion-mnist" in str(error.value)


# --- Splits, shuffling, batching -----------------------------------------


def test_validation_split_deterministic_and_disjoint(fake_dir):
    def indices(split, seed):
        x, _ = data.load_arrays(
            "fashion_mnist",
            split,
            data_dir=fake_dir,
            validation_fraction=0.25,
            seed=seed,
        )
        return example_indices(x)

    train, validation = indices("train", 3), indices("validation", 3)
    assert len(train) == 150 and len(validation) == 50
    assert not set(train) & set(validation)
    assert set(train) | set(validation) == set(range(200))
    np.testing.assert_array_equal(indices("validation", 3), validation)
    assert set(indices("validation", 4)) != set(validation)
    batched, _ = collect(
        data.load(
            "fashion_mnist",
            "validation",
            16,
            data_dir=fake_dir,
            validation_fraction=0.25,
            seed=3,
        )
    )
    np.testing.assert_array_equal(example_indices(batched), validation)


def test_validation_without_fraction_is_an_error(fake_dir):
    with pytest.raises(ValueError, match="set validation_fraction"):
        data.load("fashion_mnist", "validation", 8, data_dir=fake_dir)


def test_train_shuffles_and_test_does_not(fake_dir):
    def order(split, seed=0):
        dataset = data.load(
            "fashion_mnist", split, 32, data_dir=fake_dir, seed=seed
        )
        first = example_indices(collect(dataset)[0])
        second = example_indices(collect(dataset)[0])
        return first, second

    test_first, test_second = order("test")
    np.testing.assert_array_equal(test_first, np.arange(30))
    np.testing.assert_array_equal(test_second, np.arange(30))
    epoch_1, epoch_2 = order("train")
    assert sorted(epoch_1) == list(range(200))
    assert not np.array_equal(epoch_1, np.arange(200))
    assert not np.array_equal(epoch_1, epoch_2)  # reshuffled each epoch
    np.testing.assert_array_equal(order("train")[0], epoch_1)
    assert not np.array_equal(order("train", seed=1)[0], epoch_1)


@pytest.mark.parametrize(
    "drop_remainder, sizes", [(False, [8, 8, 8, 6]), (True, [8, 8, 8])]
)
def test_drop_remainder(fake_dir, drop_remainder, sizes):
    dataset = data.load(
        "fashion_mnist",
        "test",
        8,
        data_dir=fake_dir,
        drop_remainder=drop_remainder,
    )
    assert [len(b[1]) for b in dataset] == sizes
    static_batch = dataset.element_spec[0].shape[0]
    assert static_batch == (8 if drop_remainder else None)


# --- Augmentation --------------------------------------------------------


def test_pad_crop_is_a_shifted_and_optionally_flipped_crop():
    image = tf.random.stateless_uniform((6, 6, 2), seed=(0, 1)) + 0.5
    padded = np.pad(image.numpy(), ((4, 4), (4, 4), (0, 0)))
    crops = [padded[i : i + 6, j : j + 6] for i in range(9) for j in range(9)]
    flipped_seen = False
    for s in range(12):
        for flip in (False, True):
            out = augment_lib.pad_crop(
                image, tf.constant([s, 7]), flip=flip
            ).numpy()
            plain = any(np.array_equal(out, c) for c in crops)
            mirrored = any(np.array_equal(out[:, ::-1], c) for c in crops)
            assert plain or (flip and mirrored)
            flipped_seen |= flip and mirrored and not plain
    assert flipped_seen


@pytest.mark.parametrize("name", ["cifar10", "svhn_cropped"])
def test_augmentation_changes_train_only_and_is_deterministic(tmp_path, name):
    def first(split, augment, seed=0):
        dataset = data.load(
            name, split, 8, data_dir=str(tmp_path), augment=augment, seed=seed
        )
        return collect(dataset.take(2))

    with tfds.testing.mock_data(num_examples=16):
        plain_x, plain_y = first("train", False)
        aug_x, aug_y = first("train", True)
        again_x, _ = first("train", True)
        other_x, _ = first("train", True, seed=1)
        test_plain, _ = first("test", False)
        test_aug, _ = first("test", True)
    np.testing.assert_array_equal(aug_y, plain_y)  # same order
    assert not np.allclose(aug_x, plain_x)
    np.testing.assert_array_equal(again_x, aug_x)
    assert not np.allclose(other_x, aug_x)
    np.testing.assert_array_equal(test_aug, test_plain)


# --- tfds data sets, on tfds.testing.mock_data ---------------------------


@pytest.mark.parametrize(
    "name", ["cifar10", "cifar100", "svhn_cropped", "mnist", "fashion_mnist"]
)
def test_tfds_datasets_on_mock_data(tmp_path, name):
    info = data.info(name)
    with tfds.testing.mock_data(num_examples=12):
        for split in ("train", "test"):
            x, y = collect(data.load(name, split, 5, data_dir=str(tmp_path)))
            assert x.shape == (12,) + info.input_shape
            assert x.dtype == np.float32 and y.dtype == np.int32
            assert 0 <= y.min() and y.max() < info.num_classes
            raw_max = 1.0 - np.array(data.training_statistics(name)[0])
            raw_max /= np.array(data.training_statistics(name)[1])
            assert x.max() <= raw_max.max() + 1e-4  # normalized, not raw
        held_out, _ = data.load_arrays(
            name, "validation", data_dir=str(tmp_path), validation_fraction=0.25
        )
        assert len(held_out) == 3


def test_imagenet_pipeline_on_mock_data(tmp_path):
    with tfds.testing.mock_data(num_examples=4):
        train = data.load("imagenet2012", "train", 2, data_dir=str(tmp_path))
        test = data.load("imagenet2012", "test", 2, data_dir=str(tmp_path))
        train_x, train_y = collect(train)
        test_x, _ = collect(test)
    assert train_x.shape == (4, 224, 224, 3) == test_x.shape
    assert train_y.dtype == np.int32 and train_y.max() < 1000
    assert np.isfinite(train_x).all() and np.isfinite(test_x).all()


def test_imagenet_eval_resizes_shorter_side_and_crops_centre():
    image = tf.tile(tf.linspace(0.0, 1.0, 512)[None, :, None], (256, 1, 3))
    out = augment_lib.imagenet_eval(image).numpy()
    assert out.shape == (224, 224, 3)
    # 256x512 stays 256x512; the central 224 columns are 144..367.
    np.testing.assert_allclose(
        out[0, [0, -1], 0], image.numpy()[0, [144, 367], 0], atol=1e-6
    )


# --- Image folders -------------------------------------------------------


def _write_image(path, value, fmt="png"):
    image = tf.fill((64, 64, 3), tf.constant(value, tf.uint8))
    encoded = (
        tf.io.encode_png(image)
        if fmt == "png"
        else tf.io.encode_jpeg(image, quality=100)
    )
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tf.io.write_file(path, encoded)


def test_tiny_imagenet_standard_layout(tmp_path):
    root = str(tmp_path)
    wnids = ["n02", "n01", "n03"]  # class index follows sorted order
    for wnid in wnids:
        for i in range(2):
            _write_image(
                os.path.join(root, "train", wnid, "images", f"{wnid}_{i}.JPEG"),
                40,
                "jpeg",
            )
    lines = []
    for i, wnid in enumerate(["n03", "n01", "n03", "n02"]):
        _write_image(
            os.path.join(root, "val", "images", f"val_{i}.JPEG"), 200, "jpeg"
        )
        lines.append(f"val_{i}.JPEG\t{wnid}\t0\t0\t63\t63\n")
    with open(os.path.join(root, "val", "val_annotations.txt"), "w") as f:
        f.writelines(lines)
    train_x, train_y = data.load_arrays("tiny_imagenet", "train", data_dir=root)
    test_x, test_y = data.load_arrays("tiny_imagenet", "test", data_dir=root)
    assert train_x.shape == (6, 64, 64, 3) and test_x.shape == (4, 64, 64, 3)
    np.testing.assert_array_equal(train_y, [0, 0, 1, 1, 2, 2])
    np.testing.assert_array_equal(test_y, [2, 0, 2, 1])
    batch_x, _ = next(
        iter(data.load("tiny_imagenet", "train", 6, data_dir=root))
    )
    assert batch_x.shape == (6, 64, 64, 3)


def test_generic_image_folder_layout(tmp_path):
    root = str(tmp_path)
    for split, count in (("train", 3), ("test", 1)):
        for value, name in ((10, "cat"), (250, "dog")):
            for i in range(count):
                _write_image(os.path.join(root, split, name, f"{i}.png"), value)
    x, y = data.load_arrays("tiny_imagenet", "test", data_dir=root)
    np.testing.assert_array_equal(y, [0, 1])
    mean, std = data.training_statistics("tiny_imagenet")
    expected = (np.array([10, 250])[:, None] / 255.0 - mean) / std
    np.testing.assert_allclose(x[:, 7, 9, :], expected, rtol=1e-5)
    os.makedirs(os.path.join(root, "test", "bird"))
    with pytest.raises(ValueError, match="bird"):
        data.load("tiny_imagenet", "test", 2, data_dir=root)


# --- Generated data sets -------------------------------------------------


@pytest.mark.parametrize("name, num_test", [("digits", 360), ("mnist1d", 1000)])
def test_generated_datasets_are_real_and_normalized(name, num_test):
    info = data.info(name)
    x, y = data.load_arrays(name, "train")
    test_x, test_y = data.load_arrays(name, "test")
    assert x.shape == (info.num_train_examples,) + info.input_shape
    assert test_x.shape == (num_test,) + info.input_shape
    assert abs(x.mean()) < 1e-4 and abs(x.std() - 1.0) < 1e-4
    assert set(np.unique(y)) == set(range(info.num_classes))
    np.testing.assert_array_equal(data.load_arrays(name, "test")[1], test_y)
    # Every test example is absent from the training set.
    train_rows = {row.tobytes() for row in x}
    assert not any(row.tobytes() in train_rows for row in test_x)
    batch = next(iter(data.load(name, "train", 64)))
    assert batch[0].shape == (64,) + info.input_shape


def test_missing_optional_dependency_names_the_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "mnist1d", None)
    monkeypatch.setitem(sys.modules, "mnist1d.data", None)
    with pytest.raises(ImportError, match="pip install mnist1d"):
        data.load("mnist1d", "train", 8)


# --- Errors and info -----------------------------------------------------


@pytest.mark.parametrize(
    "name, needle",
    [
        ("cifar10", "tfds build cifar10"),
        ("imagenet2012", "tfds build imagenet2012 --manual_dir"),
        ("mnist", "train-images-idx3-ubyte.gz"),
        ("tiny_imagenet", "tiny-imagenet-200"),
    ],
)
def test_missing_data_fails_at_load_naming_the_path(tmp_path, name, needle):
    where = str(tmp_path / "no_such_dir")
    with pytest.raises(FileNotFoundError) as error:
        data.load(name, "train", 8, data_dir=where)
    assert where in str(error.value)
    assert needle in str(error.value)


def test_partial_idx_files_name_the_missing_file(fake_dir):
    os.remove(os.path.join(fake_dir, "train-labels-idx1-ubyte.gz"))
    with pytest.raises(
        FileNotFoundError, match="train-labels-idx1-ubyte.gz is missing"
    ):
        data.load("mnist", "train", 8, data_dir=fake_dir)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(name="emnist"), "Known data sets: mnist, fashion_mnist"),
        (dict(split="valid"), "Unknown split 'valid'"),
        (dict(validation_fraction=1.0), r"must be in \[0, 1\)"),
        (dict(validation_fraction=0.0001), "leaves both"),
        (dict(batch_size=0), "batch_size must be a positive integer"),
    ],
)
def test_bad_arguments(fake_dir, kwargs, message):
    arguments = dict(
        name="fashion_mnist", split="train", batch_size=8, data_dir=fake_dir
    )
    arguments.update(kwargs)
    with pytest.raises(ValueError, match=message):
        data.load(**arguments)


def test_info_needs_no_data():
    assert set(data.DATASET_NAMES) == {
        "mnist",
        "fashion_mnist",
        "cifar10",
        "cifar100",
        "svhn_cropped",
        "imagenet2012",
        "tiny_imagenet",
        "mnist1d",
        "digits",
    }
    assert data.info("cifar100") == data.DatasetInfo(100, (32, 32, 3), 50_000)
    assert data.info("imagenet2012").input_shape == (224, 224, 3)
    assert data.info("mnist1d").input_shape == (40, 1)
    with pytest.raises(ValueError, match="tiny_imagenet"):
        data.info("imagenet")
