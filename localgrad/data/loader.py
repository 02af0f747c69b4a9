"""`load`: a named data set as a batched, normalized `tf.data.Dataset`."""

import dataclasses

import numpy as np
import tensorflow as tf

from localgrad.data import augment as augment_lib
from localgrad.data import catalog, sources
from localgrad.errors import UserError

AUTOTUNE = tf.data.AUTOTUNE
SPLITS = ("train", "validation", "test")


def _check_arguments(
    name: str, split: str, validation_fraction: float
) -> catalog.DatasetSpec:
    spec = catalog.spec(name)
    if split not in SPLITS:
        raise UserError(
            f"Unknown split {split!r}; use one of {', '.join(SPLITS)}."
        )
    if not 0.0 <= validation_fraction < 1.0:
        raise UserError(
            f"validation_fraction={validation_fraction} must be in [0, 1): "
            "the fraction of the training set held out for validation."
        )
    if split == "validation" and validation_fraction == 0.0:
        raise UserError(
            f"{name} has no separate validation split: set "
            "validation_fraction (e.g. 0.1) to hold out that fraction of the "
            "training set as 'validation'."
        )
    return spec


def holdout_mask(
    num_examples: int, validation_fraction: float, seed: int
) -> np.ndarray:
    """Marks a seeded random `validation_fraction` of examples as held out.

    Example:

    ```python
    mask = holdout_mask(100, 0.1, seed=0)
    mask.sum()  # 10
    ```

    Args:
        num_examples: Size of the training split.
        validation_fraction: Fraction to hold out, in (0, 1).
        seed: Same seed, same held-out examples.

    Returns:
        A boolean array of length `num_examples`, True for held-out ones.

    Raises:
        ValueError: if the size is unknown or the fraction leaves either
            part empty.
    """
    if num_examples < 0:
        raise UserError(
            "The training split's size is unknown, so no validation "
            "examples can be held out; use validation_fraction=0."
        )
    num_held_out = round(validation_fraction * num_examples)
    if not 0 < num_held_out < num_examples:
        raise UserError(
            f"validation_fraction={validation_fraction} of {num_examples} "
            f"examples holds out {num_held_out}; choose a fraction that "
            "leaves both the training and the validation part non-empty."
        )
    order = np.random.default_rng(seed).permutation(num_examples)
    mask = np.zeros(num_examples, dtype=bool)
    mask[order[:num_held_out]] = True
    return mask


def _split_dataset(
    name: str,
    split: str,
    data_dir: str | None,
    validation_fraction: float,
    seed: int,
    shuffle: bool,
) -> sources.Examples:
    """Raw examples of `split`, with validation examples held out."""
    holding_out = split != "test" and validation_fraction > 0.0
    raw = sources.examples(
        name,
        "test" if split == "test" else "train",
        data_dir,
        shuffle_files=shuffle and not holding_out,
        seed=seed,
    )
    if not holding_out:
        return raw
    mask = holdout_mask(raw.num_examples, validation_fraction, seed)
    keep = mask if split == "validation" else ~mask
    if raw.arrays is not None:
        x, y = raw.arrays
        held = sources.from_arrays(x[keep], y[keep], scale=1.0)
        return dataclasses.replace(held, decode=raw.decode)
    keep_tensor = tf.constant(keep)
    dataset = (
        raw.dataset.enumerate()
        .filter(lambda index, example: tf.gather(keep_tensor, index))
        .map(lambda index, example: example)
    )
    return dataclasses.replace(
        raw, dataset=dataset, num_examples=int(keep.sum())
    )


def _pipeline(
    name: str,
    split: str,
    data_dir: str | None,
    validation_fraction: float,
    seed: int,
    shuffle: bool,
    augment: bool,
    batch_size: int,
    drop_remainder: bool,
) -> tf.data.Dataset:
    """Batches of (image, label), preprocessed and normalized."""
    spec = _check_arguments(name, split, validation_fraction)
    raw = _split_dataset(
        name, split, data_dir, validation_fraction, seed, shuffle
    )
    mean, std = sources.training_statistics(name)
    mean = tf.constant(mean, tf.float32)
    std = tf.constant(std, tf.float32)
    input_shape = spec.info.input_shape
    kind = spec.augmentation
    augment = augment and kind != "none"

    def prepare(raw_image, label, random):
        image = raw.decode(raw_image)
        element_seed = tf.stack([random, tf.constant(seed, tf.int64)])
        if kind == "imagenet":
            image = (
                augment_lib.imagenet_train(image, element_seed)
                if augment
                else augment_lib.imagenet_eval(image)
            )
        elif augment:
            image = augment_lib.pad_crop(
                image, element_seed, flip=kind == "pad_crop_flip"
            )
        image = tf.ensure_shape((image - mean) / std, input_shape)
        return image, label

    def prepare_batch(raw_images, labels):
        images = (raw.decode(raw_images) - mean) / std
        return tf.ensure_shape(images, (None,) + input_shape), labels

    dataset = raw.dataset
    if shuffle:
        buffer = spec.shuffle_buffer
        if raw.num_examples > 0:
            buffer = min(buffer, raw.num_examples)
        dataset = dataset.shuffle(
            buffer, seed=seed, reshuffle_each_iteration=True
        )
    if raw.batchable and not augment and kind != "imagenet":
        # Nothing per-example to do: decode and normalize whole batches.
        dataset = dataset.batch(batch_size, drop_remainder=drop_remainder)
        dataset = dataset.map(prepare_batch, num_parallel_calls=AUTOTUNE)
    else:
        randoms = tf.data.Dataset.random(
            seed=seed, rerandomize_each_iteration=True
        )
        dataset = tf.data.Dataset.zip(dataset, randoms).map(
            lambda example, random: prepare(*example, random),
            num_parallel_calls=AUTOTUNE,
        )
        dataset = dataset.batch(batch_size, drop_remainder=drop_remainder)
    return dataset.prefetch(AUTOTUNE)


def load(
    name: str,
    split: str,
    batch_size: int,
    data_dir: str | None = None,
    validation_fraction: float = 0.0,
    augment: bool = True,
    seed: int = 0,
    drop_remainder: bool = False,
) -> tf.data.Dataset:
    """Loads a named data set as batched `(image float32, label int32)`.

    Images are normalized with the training set's per-channel mean and std
    (see `localgrad.data.catalog`). The "train" split is shuffled (again
    each epoch) and, unless `augment=False`, augmented with the data set's
    standard augmentation: zero-pad 4 + random crop + left-right flip for
    cifar10/cifar100/tiny_imagenet, pad + crop for svhn_cropped,
    random-resized crop to 224 + flip for imagenet2012 (whose other splits
    are resized to 256 and centre-cropped to 224), none for the others.
    The same `seed` gives the same order, augmentation and held-out split.
    "validation" and "test" are neither shuffled nor augmented.

    Example:

    ```python
    train = localgrad.data.load("fashion_mnist", "train", batch_size=128,
                                validation_fraction=0.1)
    val = localgrad.data.load("fashion_mnist", "validation", batch_size=512,
                              validation_fraction=0.1)
    model.fit(train, validation_data=val, epochs=10)
    ```

    Args:
        name: One of `DATASET_NAMES`.
        split: `"train"`, `"validation"` or `"test"`.
        batch_size: Examples per batch.
        data_dir: Where the data are. mnist/fashion_mnist: a directory with
            the original IDX `.gz` files (fashion_mnist defaults to
            `/usr/share/datasets/fashion-mnist`), else a tfds data_dir;
            cifar10/cifar100/svhn_cropped/imagenet2012: a tfds data_dir
            (None: tfds' default); tiny_imagenet: the image folder
            (required). Ignored by the generated mnist1d and digits.
        validation_fraction: Fraction of the training set held out as
            "validation" (and removed from "train"); 0 means no validation
            split.
        augment: Whether to apply the data set's standard augmentation to
            "train".
        seed: Seed for shuffling, augmentation and the held-out split.
        drop_remainder: Drop the last, smaller batch (static batch shape for
            distributed or XLA-compiled training).

    Returns:
        A prefetched `tf.data.Dataset` of `(images, labels)` batches.

    Raises:
        ValueError: for an unknown name or split, a bad fraction or batch
            size, "validation" without `validation_fraction`, or corrupt
            files.
        FileNotFoundError: if the data are not on disk; the message says
            where it looked and how to get them.
        ImportError: if mnist1d or scikit-learn is needed but missing.
    """
    if isinstance(batch_size, bool) or not (
        isinstance(batch_size, (int, np.integer)) and batch_size > 0
    ):
        raise UserError(
            f"batch_size must be a positive integer; got {batch_size!r}."
        )
    return _pipeline(
        name,
        split,
        data_dir,
        validation_fraction,
        seed,
        shuffle=split == "train",
        augment=augment and split == "train",
        batch_size=int(batch_size),
        drop_remainder=drop_remainder,
    )


def load_arrays(
    name: str,
    split: str,
    data_dir: str | None = None,
    validation_fraction: float = 0.0,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Loads a whole split as normalized numpy arrays, in a fixed order.

    No shuffling, no augmentation (ImageNet images get the evaluation
    resize and crop). Meant for small data sets and tests.

    Example:

    ```python
    x, y = localgrad.data.load_arrays("digits", "train")
    x.shape, y.shape  # (1437, 8, 8, 1), (1437,)
    ```

    Args:
        name: One of `DATASET_NAMES`.
        split: `"train"`, `"validation"` or `"test"`.
        data_dir: As for `load`.
        validation_fraction: As for `load`.
        seed: Seed of the held-out split.

    Returns:
        `(x, y)`: float32 images and int32 labels.

    Raises:
        ValueError: as `load` does.
        FileNotFoundError: as `load` does.
        ImportError: as `load` does.
    """
    dataset = _pipeline(
        name,
        split,
        data_dir,
        validation_fraction,
        seed,
        shuffle=False,
        augment=False,
        batch_size=1024,
        drop_remainder=False,
    )
    xs, ys = [], []
    for x, y in dataset.as_numpy_iterator():
        xs.append(x)
        ys.append(y)
    return np.concatenate(xs), np.concatenate(ys)
