"""Training batches read again from the arguments `fit` was given."""

import math

import numpy as np
import tensorflow as tf


def fit_batches(arguments: dict, num_batches: int, seed: int = 0):
    """Up to `num_batches` training batches of `fit`'s data, re-iterable.

    What a callback needs to run training examples through the model
    again (as `PreciseBatchNorm` does) when only `fit`'s own arguments are
    at hand: a `tf.data.Dataset` is read again from its start (repeated
    when it is shorter); in-memory inputs (a NumPy array or a tensor) give
    a fixed random sample of the training part (before
    `validation_split`'s share) in batches of `fit`'s batch size (Keras'
    32 when none was given); never more batches than an epoch trains on
    (`steps_per_epoch`, when given). Other inputs (Python generators,
    `keras.utils.PyDataset`, dicts of inputs) cannot be read again safely:
    the answer is then None.

    Example:

    ```python
    batches, count = fit_batches({"x": x_train, "batch_size": 64}, 50)
    count  # 50, or fewer when x_train holds fewer than 50 batches
    ```

    Args:
        arguments: `fit`'s arguments by name (`x`, `batch_size`,
            `validation_split`, `steps_per_epoch`; missing ones take
            Keras' defaults).
        num_batches: How many batches are wanted.
        seed: Chooses the sample of in-memory inputs.

    Returns:
        `(batches, count)`: an iterable of batches (each `x` or a tuple
        whose first item is `x`) with at least `count` batches, `count`
        at most `num_batches`; or None.
    """
    x = arguments.get("x")
    num_batches = min(
        num_batches, arguments.get("steps_per_epoch") or num_batches
    )
    if isinstance(x, tf.data.Dataset):
        known = int(x.cardinality())
        if known > 0:
            return x.repeat(), min(num_batches, known)
        return x.repeat(), num_batches
    if isinstance(x, (np.ndarray, tf.Tensor)):
        batch_size = arguments.get("batch_size") or 32
        split = arguments.get("validation_split") or 0.0
        training = int(len(x) * (1.0 - split))
        if training < 1:
            return None
        sample = np.random.default_rng(seed).permutation(training)
        sample = sample[: num_batches * batch_size]
        chosen = tf.gather(x, sample) if isinstance(x, tf.Tensor) else x[sample]
        count = math.ceil(len(sample) / batch_size)
        return tf.data.Dataset.from_tensor_slices(chosen).batch(
            batch_size
        ), count
    return None
