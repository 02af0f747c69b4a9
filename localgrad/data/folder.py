"""Image-folder data sets: Tiny ImageNet's layout and a generic one.

Tiny ImageNet (tiny-imagenet-200.zip, unzipped):

    data_dir/train/<wnid>/images/*.JPEG
    data_dir/val/images/*.JPEG
    data_dir/val/val_annotations.txt   # "<file>\\t<wnid>\\t<box>..." per line

Its test images have no public labels, so the labelled `val/` images are the
"test" split (the usual practice); "validation" is held out from train.

Generic layout (any image folder):

    data_dir/train/<class>/*.png|jpg|jpeg
    data_dir/test/<class>/*.png|jpg|jpeg   # or data_dir/val/<class>/...

Class indices follow the sorted names of the train class folders.
"""

import os

import numpy as np

from localgrad.errors import UserError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")


def _images_in(directory: str) -> list[str]:
    return sorted(
        os.path.join(directory, entry)
        for entry in os.listdir(directory)
        if entry.lower().endswith(IMAGE_EXTENSIONS)
    )


def _class_folders(
    split_dir: str,
) -> list[tuple[str, list[str]]]:
    """(class name, image paths) for every class folder of a split."""
    classes = []
    for name in sorted(os.listdir(split_dir)):
        class_dir = os.path.join(split_dir, name)
        if not os.path.isdir(class_dir):
            continue
        nested = os.path.join(class_dir, "images")
        classes.append(
            (name, _images_in(nested if os.path.isdir(nested) else class_dir))
        )
    return classes


def _tiny_imagenet_val(
    val_dir: str, class_index: dict[str, int]
) -> tuple[list[str], list[int]]:
    annotations = os.path.join(val_dir, "val_annotations.txt")
    paths, labels = [], []
    with open(annotations) as file:
        for line_number, line in enumerate(file, start=1):
            fields = line.split("\t")
            if len(fields) < 2:
                if line.strip():
                    raise UserError(
                        f"{annotations}:{line_number}: expected "
                        f"'<file>\\t<wnid>...', got {line.strip()!r}."
                    )
                continue
            file_name, wnid = fields[0].strip(), fields[1].strip()
            if wnid not in class_index:
                raise UserError(
                    f"{annotations}:{line_number}: class {wnid!r} has no "
                    "folder under train/."
                )
            paths.append(os.path.join(val_dir, "images", file_name))
            labels.append(class_index[wnid])
    return paths, labels


def list_images(
    data_dir: str, split: str, how_to_get: str
) -> tuple[list[str], np.ndarray]:
    """Lists the image files and labels of one split of an image folder.

    Example:

    ```python
    paths, labels = list_images("/data/tiny-imagenet-200", "test", "...")
    ```

    Args:
        data_dir: The data set's root directory.
        split: `"train"` or `"test"`.
        how_to_get: Text telling the user how to get the data, put in
            errors.

    Returns:
        Sorted image paths and their int32 labels.

    Raises:
        FileNotFoundError: if `data_dir` is missing or has no images for
            the split.
        ValueError: if a test class has no train folder.
    """
    if data_dir is None:
        raise FileNotFoundError(
            "tiny_imagenet is read from a local folder: pass data_dir=... "
            f"({how_to_get})."
        )
    train_dir = os.path.join(data_dir, "train")
    if not os.path.isdir(train_dir):
        raise FileNotFoundError(
            f"No image folder at {train_dir}: {how_to_get}."
        )
    train_classes = _class_folders(train_dir)
    class_index = {name: i for i, (name, _) in enumerate(train_classes)}
    paths: list[str] = []
    labels: list[int] = []
    val_dir = os.path.join(data_dir, "val")
    if split == "train":
        looked_in = train_dir
        for name, files in train_classes:
            paths += files
            labels += [class_index[name]] * len(files)
    elif os.path.isfile(os.path.join(val_dir, "val_annotations.txt")):
        looked_in = val_dir
        paths, labels = _tiny_imagenet_val(val_dir, class_index)
    else:
        test_dir = os.path.join(data_dir, "test")
        looked_in = test_dir if os.path.isdir(test_dir) else val_dir
        if not os.path.isdir(looked_in):
            raise FileNotFoundError(
                f"No test images: neither {test_dir} nor {val_dir} exists "
                f"({how_to_get})."
            )
        for name, files in _class_folders(looked_in):
            if name not in class_index:
                raise UserError(
                    f"Class folder {os.path.join(looked_in, name)} has no "
                    f"counterpart in {train_dir}; test classes must be a "
                    "subset of train classes."
                )
            paths += files
            labels += [class_index[name]] * len(files)
    if not paths:
        raise FileNotFoundError(
            f"No {'/'.join(IMAGE_EXTENSIONS)} images found in {looked_in} "
            f"({how_to_get})."
        )
    return paths, np.asarray(labels, dtype=np.int32)
