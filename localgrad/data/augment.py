"""Per-example preprocessing and augmentation, deterministic given a seed.

Every random op is stateless: it takes a `seed` tensor of shape `(2,)`, so the
same seed gives the same augmented image. Images are float32 in [0, 1].
"""

import tensorflow as tf

IMAGENET_SIZE = 224
IMAGENET_RESIZE = 256  # Eval: shorter side to 256, then a central 224 crop.


def pad_crop(
    image: tf.Tensor, seed: tf.Tensor, padding: int = 4, flip: bool = True
) -> tf.Tensor:
    """Zero-pads, randomly crops back to the input size, optionally flips.

    The standard CIFAR augmentation (He et al., 2016): pad 4 pixels of zeros
    (black) on each side, take a random crop of the original size, and flip
    left-right with probability 1/2.

    Example:

    ```python
    out = pad_crop(image, seed=tf.constant([1, 2]))  # same shape as image
    ```

    Args:
        image: A `(height, width, channels)` float image.
        seed: A `(2,)` integer seed for the stateless random ops.
        padding: Pixels of zero padding on each side.
        flip: Whether to flip left-right at random.

    Returns:
        The augmented image, with the input's shape.
    """
    crop_seed, flip_seed = tf.unstack(
        tf.random.experimental.stateless_split(seed, num=2)
    )
    padded = tf.pad(image, [[padding, padding], [padding, padding], [0, 0]])
    image = tf.image.stateless_random_crop(padded, tf.shape(image), crop_seed)
    if flip:
        image = tf.image.stateless_random_flip_left_right(image, flip_seed)
    return image


def imagenet_train(
    image: tf.Tensor, seed: tf.Tensor, size: int = IMAGENET_SIZE
) -> tf.Tensor:
    """Random-resized crop to `size` plus a random left-right flip.

    The crop covers 8 % to 100 % of the image with an aspect ratio in
    [3/4, 4/3] (Szegedy et al., 2015, as in torchvision's
    `RandomResizedCrop`); after 10 failed attempts the whole image is used.

    Example:

    ```python
    out = imagenet_train(image, seed=tf.constant([1, 2]))  # (224, 224, 3)
    ```

    Args:
        image: A `(height, width, 3)` float image of any size.
        seed: A `(2,)` integer seed for the stateless random ops.
        size: Side of the square output.

    Returns:
        A `(size, size, 3)` float32 image.
    """
    box_seed, flip_seed = tf.unstack(
        tf.random.experimental.stateless_split(seed, num=2)
    )
    begin, crop_size, _ = tf.image.stateless_sample_distorted_bounding_box(
        tf.shape(image),
        bounding_boxes=tf.zeros([1, 0, 4]),
        seed=box_seed,
        min_object_covered=0.08,
        aspect_ratio_range=(3 / 4, 4 / 3),
        area_range=(0.08, 1.0),
        max_attempts=10,
        use_image_if_no_bounding_boxes=True,
    )
    image = tf.slice(image, begin, crop_size)
    image = tf.image.resize(image, (size, size), method="bilinear")
    image = tf.image.stateless_random_flip_left_right(image, flip_seed)
    return tf.ensure_shape(image, (size, size, 3))


def imagenet_eval(
    image: tf.Tensor,
    size: int = IMAGENET_SIZE,
    resize_to: int = IMAGENET_RESIZE,
) -> tf.Tensor:
    """Resizes the shorter side to `resize_to`, then crops the centre.

    Example:

    ```python
    out = imagenet_eval(image)  # (224, 224, 3)
    ```

    Args:
        image: A `(height, width, 3)` float image of any size.
        size: Side of the square output.
        resize_to: Length of the shorter side after resizing.

    Returns:
        A `(size, size, 3)` float32 image.
    """
    shape = tf.cast(tf.shape(image)[:2], tf.float32)
    scale = resize_to / tf.reduce_min(shape)
    new_shape = tf.cast(tf.round(shape * scale), tf.int32)
    new_shape = tf.maximum(new_shape, size)
    image = tf.image.resize(image, new_shape, method="bilinear")
    top = (new_shape[0] - size) // 2
    left = (new_shape[1] - size) // 2
    image = image[top : top + size, left : left + size]
    return tf.ensure_shape(image, (size, size, 3))
