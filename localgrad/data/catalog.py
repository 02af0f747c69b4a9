"""What localgrad knows about each named data set, without reading any data.

One table, `_SPECS`, holds for every data set its shape, class count,
training-set size, normalization constants (with where they come from), its
standard training augmentation and how to get it.
"""

import dataclasses
from typing import NamedTuple

from localgrad.errors import UserError


class DatasetInfo(NamedTuple):
    """Facts about a data set that are known without reading it.

    Attributes:
        num_classes: Number of label classes.
        input_shape: Shape of one preprocessed example, without the batch
            dimension, e.g. `(28, 28, 1)`.
        num_train_examples: Size of the full training split (before any
            validation examples are held out).
    """

    num_classes: int
    input_shape: tuple[int, ...]
    num_train_examples: int


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
    """Everything the loader needs to know about one named data set.

    Attributes:
        info: Shapes and sizes (see `DatasetInfo`).
        mean: Per-channel mean of the training set, in the units the
            preprocessing produces (pixels scaled to [0, 1]); `None` when it
            is computed from the training split at load time.
        std: Per-channel standard deviation, likewise.
        stats_source: Where `mean` and `std` come from.
        augmentation: The standard training augmentation: `"none"`,
            `"pad_crop"`, `"pad_crop_flip"` or `"imagenet"`.
        shuffle_buffer: Upper bound on the training shuffle buffer.
        how_to_get: What a user does when the data are not on disk.
    """

    info: DatasetInfo
    mean: tuple[float, ...] | None
    std: tuple[float, ...] | None
    stats_source: str
    augmentation: str
    shuffle_buffer: int
    how_to_get: str


_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)
_IMAGENET_SOURCE = (
    "the constants used by torchvision's ImageNet reference models (ILSVRC-"
    "2012 training set, RGB in [0, 1])"
)


def _tfds_how_to_get(name: str) -> str:
    return (
        f"build it on a machine with internet access (`tfds build {name}`), "
        "copy the resulting tensorflow_datasets directory here and pass "
        "data_dir=<that directory> (or set TFDS_DATA_DIR)"
    )


_SPECS: dict[str, DatasetSpec] = {
    "mnist": DatasetSpec(
        info=DatasetInfo(10, (28, 28, 1), 60_000),
        mean=(0.1307,),
        std=(0.3081,),
        stats_source="the MNIST training set (60,000 images, widely quoted)",
        augmentation="none",
        shuffle_buffer=60_000,
        how_to_get=(
            "pass data_dir=<a directory holding train-images-idx3-ubyte.gz, "
            "train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz and "
            "t10k-labels-idx1-ubyte.gz>, or " + _tfds_how_to_get("mnist")
        ),
    ),
    "fashion_mnist": DatasetSpec(
        info=DatasetInfo(10, (28, 28, 1), 60_000),
        mean=(0.2860,),
        std=(0.3530,),
        stats_source=(
            "computed from train-images-idx3-ubyte.gz of the dataset-fashion-"
            "mnist package (mean 0.28604, std 0.35302)"
        ),
        augmentation="none",
        shuffle_buffer=60_000,
        how_to_get=(
            "`apt-get install -y dataset-fashion-mnist` (puts the IDX files "
            "in /usr/share/datasets/fashion-mnist), or pass data_dir=<a "
            "directory holding the four IDX .gz files>, or "
            + _tfds_how_to_get("fashion_mnist")
        ),
    ),
    "cifar10": DatasetSpec(
        info=DatasetInfo(10, (32, 32, 3), 50_000),
        mean=(0.4914, 0.4822, 0.4465),
        std=(0.2470, 0.2435, 0.2616),
        stats_source="per-channel statistics of the 50,000 training images",
        augmentation="pad_crop_flip",
        shuffle_buffer=50_000,
        how_to_get=_tfds_how_to_get("cifar10"),
    ),
    "cifar100": DatasetSpec(
        info=DatasetInfo(100, (32, 32, 3), 50_000),
        mean=(0.5071, 0.4865, 0.4409),
        std=(0.2673, 0.2564, 0.2762),
        stats_source="per-channel statistics of the 50,000 training images",
        augmentation="pad_crop_flip",
        shuffle_buffer=50_000,
        how_to_get=_tfds_how_to_get("cifar100"),
    ),
    "svhn_cropped": DatasetSpec(
        info=DatasetInfo(10, (32, 32, 3), 73_257),
        mean=(0.4377, 0.4438, 0.4728),
        std=(0.1980, 0.2010, 0.1970),
        stats_source="per-channel statistics of the 73,257 training images",
        augmentation="pad_crop",
        shuffle_buffer=50_000,
        how_to_get=_tfds_how_to_get("svhn_cropped"),
    ),
    "imagenet2012": DatasetSpec(
        info=DatasetInfo(1000, (224, 224, 3), 1_281_167),
        mean=_IMAGENET_MEAN,
        std=_IMAGENET_STD,
        stats_source=_IMAGENET_SOURCE,
        augmentation="imagenet",
        shuffle_buffer=10_000,
        how_to_get=(
            "download ILSVRC2012_img_train.tar and ILSVRC2012_img_val.tar "
            "from image-net.org into a manual directory, run `tfds build "
            "imagenet2012 --manual_dir=<it>` and pass data_dir=<the "
            "tensorflow_datasets directory>"
        ),
    ),
    "tiny_imagenet": DatasetSpec(
        info=DatasetInfo(200, (64, 64, 3), 100_000),
        mean=_IMAGENET_MEAN,
        std=_IMAGENET_STD,
        stats_source=(
            "Tiny ImageNet is a subset of ImageNet; " + _IMAGENET_SOURCE
        ),
        augmentation="pad_crop_flip",
        shuffle_buffer=100_000,
        how_to_get=(
            "unzip tiny-imagenet-200.zip and pass data_dir=<tiny-imagenet-"
            "200> (train/<wnid>/images/*.JPEG, val/images, "
            "val/val_annotations.txt), or a directory laid out as "
            "<split>/<class>/*.png|jpg"
        ),
    ),
    "mnist1d": DatasetSpec(
        info=DatasetInfo(10, (40, 1), 4_000),
        mean=None,
        std=None,
        stats_source="computed from the generated training split",
        augmentation="none",
        shuffle_buffer=4_000,
        how_to_get="`pip install mnist1d`",
    ),
    "digits": DatasetSpec(
        info=DatasetInfo(10, (8, 8, 1), 1_437),
        mean=None,
        std=None,
        stats_source="computed from the 80 % training split",
        augmentation="none",
        shuffle_buffer=1_437,
        how_to_get="`pip install scikit-learn`",
    ),
}

DATASET_NAMES: tuple[str, ...] = tuple(_SPECS)


def spec(name: str) -> DatasetSpec:
    """Returns the `DatasetSpec` of a named data set.

    Raises:
        ValueError: if `name` is not one of `DATASET_NAMES`.
    """
    if name not in _SPECS:
        raise UserError(
            f"Unknown data set {name!r}. Known data sets: "
            f"{', '.join(DATASET_NAMES)}."
        )
    return _SPECS[name]


def info(name: str) -> DatasetInfo:
    """Shapes and sizes of a named data set, without reading any data.

    Example:

    ```python
    localgrad.data.info("cifar10")
    # DatasetInfo(num_classes=10, input_shape=(32, 32, 3),
    #             num_train_examples=50000)
    ```

    Args:
        name: One of `DATASET_NAMES`.

    Returns:
        A `DatasetInfo`.

    Raises:
        ValueError: if `name` is not one of `DATASET_NAMES`.
    """
    return spec(name).info
