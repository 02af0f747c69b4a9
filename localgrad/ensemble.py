"""SEDONA's test-time ensemble: the mean log-probabilities of the last heads.

A greedy model with K blocks has K classifiers: the auxiliary heads of
blocks 0..K-2 and the network's own classifier after block K-1. The
ensemble of the last n of them predicts the argmax of the mean of their
log-softmax outputs (the normalised geometric mean of their probabilities).

Example:

```python
logits = model.head_outputs(x)                   # K tensors (B, classes)
scores = localgrad.ensemble.ensemble_log_probs(logits, num_heads=2)
model.evaluate_ensemble(x, y, num_heads=2)       # {"accuracy": ..., ...}
```
"""

from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf

from localgrad.errors import UserError

DEFAULT_BATCH_SIZE = 32


def check_num_heads(
    num_heads, num_blocks: int, argument: str = "num_heads"
) -> int:
    """Checks that `num_heads` heads of a K-block model can vote.

    Args:
        num_heads: How many of the last heads vote.
        num_blocks: K, the number of blocks (and of heads, the network's
            classifier included).
        argument: The argument's name in the error message.

    Returns:
        `num_heads` as an int.

    Raises:
        ValueError: if `num_heads` is not an int in 1..K.
    """
    if (
        isinstance(num_heads, bool)
        or not isinstance(num_heads, (int, np.integer))
        or not 1 <= num_heads <= num_blocks
    ):
        raise UserError(
            f"{argument}={num_heads!r}: a model with {num_blocks} block(s) "
            f"has {num_blocks} head(s) to ensemble (the network's "
            "classifier and one auxiliary head per non-last block). Use "
            f"an int in 1..{num_blocks}."
        )
    return int(num_heads)


def ensemble_log_probs(head_logits: Sequence, num_heads: int) -> tf.Tensor:
    """The mean log-softmax of the last `num_heads` heads' logits.

    Example:

    ```python
    scores = ensemble_log_probs([logits_0, logits_1, logits_2], 2)
    # mean(log_softmax(logits_1), log_softmax(logits_2)); argmax predicts
    ```

    Args:
        head_logits: The K heads' logits, in block order, each
            `(batch, classes)` (the last is the network's classifier).
        num_heads: How many of the last heads vote (1..K).

    Returns:
        A float32 tensor `(batch, classes)` of mean log-probabilities.

    Raises:
        ValueError: if `num_heads` is not in 1..K.
    """
    num_heads = check_num_heads(num_heads, len(head_logits))
    log_probs = [
        tf.nn.log_softmax(tf.cast(logits, tf.float32), axis=-1)
        for logits in head_logits[-num_heads:]
    ]
    return tf.add_n(log_probs) / float(num_heads)


def evaluate_ensemble(
    model,
    x,
    y=None,
    num_heads: int = 2,
    batch_size: int | None = None,
) -> dict:
    """Accuracy of the ensemble of a greedy model's last `num_heads` heads.

    Example:

    ```python
    evaluate_ensemble(model, x_test, y_test, num_heads=2)
    # {"accuracy": 0.91, "num_heads": 2}
    evaluate_ensemble(model, test_dataset, num_heads=3)
    ```

    Args:
        model: A `localgrad.GreedyModel`.
        x: Inputs (an array), or a `tf.data.Dataset` of `(x, y)` or
            `(x, y, sample_weight)` batches.
        y: Integer labels `(N,)` (or one-hot `(N, classes)`) when `x` is an
            array; None for a dataset.
        num_heads: How many of the last heads vote (1..K).
        batch_size: Batch size for array inputs (default 32).

    Returns:
        `{"accuracy": float, "num_heads": int}`; with sample weights the
        accuracy is their weighted mean.

    Raises:
        ValueError: for a bad `num_heads`, missing or extra labels, or
            inputs and labels of different lengths.
    """
    num_heads = check_num_heads(num_heads, model.num_blocks)
    dataset = _as_dataset(x, y, batch_size)

    @tf.function(reduce_retracing=True)
    def correct_and_weight(images, labels, sample_weight):
        logits = model.head_outputs(images, training=False)
        scores = ensemble_log_probs(logits, num_heads)
        predicted = tf.argmax(scores, axis=-1, output_type=tf.int32)
        if labels.shape.rank == 2 and labels.shape[-1] != 1:
            labels = tf.argmax(labels, axis=-1, output_type=tf.int32)
        labels = tf.cast(tf.reshape(labels, [-1]), tf.int32)
        hits = tf.cast(tf.equal(predicted, labels), tf.float64)
        if sample_weight is None:
            weight = tf.ones_like(hits)
        else:
            weight = tf.cast(tf.reshape(sample_weight, [-1]), tf.float64)
        return tf.reduce_sum(hits * weight), tf.reduce_sum(weight)

    correct, total = 0.0, 0.0
    for batch in dataset:
        images, labels, sample_weight = keras.utils.unpack_x_y_sample_weight(
            batch
        )
        if labels is None:
            raise UserError(
                "evaluate_ensemble needs labels: the dataset must yield "
                "(x, y) or (x, y, sample_weight) batches."
            )
        batch_correct, batch_total = correct_and_weight(
            images, labels, sample_weight
        )
        correct += float(batch_correct)
        total += float(batch_total)
    if total == 0.0:
        raise UserError(
            "evaluate_ensemble got no examples (or only zero sample "
            "weights); pass a non-empty x."
        )
    return {"accuracy": correct / total, "num_heads": num_heads}


def _as_dataset(x, y, batch_size):
    if isinstance(x, tf.data.Dataset):
        if y is not None:
            raise UserError(
                "Give y only with array inputs: a dataset already yields "
                "(x, y) batches."
            )
        if batch_size is not None:
            raise UserError(
                "batch_size applies to array inputs only; batch the "
                "dataset itself."
            )
        return x
    if y is None:
        raise UserError(
            "evaluate_ensemble(x, y) needs the labels y of the inputs x "
            "(or a tf.data.Dataset of (x, y) batches as x)."
        )
    x, y = np.asarray(x), np.asarray(y)
    if len(x) != len(y):
        raise UserError(
            f"x has {len(x)} examples but y has {len(y)} labels; give one "
            "label per example."
        )
    batch_size = batch_size or DEFAULT_BATCH_SIZE
    if batch_size < 1:
        raise UserError(f"batch_size must be >= 1; got {batch_size}.")
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(batch_size)
