"""Local losses as pure functions of tensors.

No layers, no tapes: each function maps tensors to a float32 scalar, so a
training loop can call it inside whatever tape it holds. Logits and
features are cast to float32 first, which keeps the losses exact under
mixed precision.
"""

import keras
from keras import ops

from localgrad.errors import UserError

# Added under the square root of the variance and to the norms, so that
# constant channels and all-zero rows give finite values and gradients.
EPSILON = 1e-8


def _is_sparse(labels, num_classes: int) -> bool:
    """True unless labels have shape (B, num_classes) (one-hot or soft)."""
    if len(labels.shape) != 2 or labels.shape[-1] != num_classes:
        return True
    # (B, 1) int labels with one class are sparse class indices.
    return num_classes == 1 and _is_integer(labels)


def _is_integer(tensor) -> bool:
    return "int" in keras.backend.standardize_dtype(tensor.dtype)


def _dense_labels(labels, num_classes: int):
    """Labels as float32 `(B, num_classes)` rows, from sparse or dense."""
    labels = ops.convert_to_tensor(labels)
    if _is_sparse(labels, num_classes):
        labels = ops.one_hot(
            ops.reshape(ops.cast(labels, "int32"), (-1,)), num_classes
        )
    return ops.cast(labels, "float32")


def _weighted_mean(values, sample_weight=None):
    """Mean of `values`; with weights, sum(w * v) / sum(w) (0 if sum is 0)."""
    if sample_weight is None:
        return ops.mean(values)
    sample_weight = ops.cast(
        ops.reshape(ops.convert_to_tensor(sample_weight), ops.shape(values)),
        "float32",
    )
    return ops.divide_no_nan(
        ops.sum(values * sample_weight), ops.sum(sample_weight)
    )


def cross_entropy(logits, labels, sample_weight=None):
    """Softmax cross-entropy averaged over the batch.

    Example:

    ```python
    cross_entropy(logits, [0, 3, 1])             # sparse labels
    cross_entropy(logits, keras.ops.one_hot([0, 3, 1], 4))  # dense labels
    ```

    Args:
        logits: `(B, n)` logits (any float dtype; cast to float32).
        labels: Sparse int labels `(B,)` (or `(B, 1)`), or one-hot / soft
            labels `(B, n)`.
        sample_weight: Optional `(B,)` weights; the result is then
            `sum(w * ce) / sum(w)`.

    Returns:
        A float32 scalar.
    """
    logits = ops.cast(logits, "float32")
    labels = ops.convert_to_tensor(labels)
    num_classes = logits.shape[-1]
    if _is_sparse(labels, num_classes):
        labels = ops.reshape(ops.cast(labels, "int32"), (-1,))
        per_example = ops.sparse_categorical_crossentropy(
            labels, logits, from_logits=True
        )
    else:
        per_example = ops.categorical_crossentropy(
            ops.cast(labels, "float32"), logits, from_logits=True
        )
    return _weighted_mean(per_example, sample_weight)


def cosine_similarity_matrix(rows):
    """The `(B, B)` matrix of cosine similarities between the rows of `rows`.

    Rows are divided by `EPSILON + their norm`, so a zero row has zero
    similarity to every row.
    """
    rows = ops.cast(rows, "float32")
    norms = ops.sqrt(ops.sum(ops.square(rows), axis=-1, keepdims=True))
    unit = rows / (norms + EPSILON)
    return ops.matmul(unit, ops.transpose(unit))


def similarity_matching_loss(
    features, labels, num_classes: int, sample_weight=None
):
    """PredSim's similarity-matching loss (Nøkland & Eidnes, 2019).

    For a feature map `(B, H, W, C)`, each example is described by its
    per-channel spatial standard deviations `sqrt(var + EPSILON)` (flat
    `(B, C)` features are used as they are). The loss is the mean squared
    difference between the cosine-similarity matrix of these descriptions
    and that of the one-hot (or soft) labels; for one-hot labels the latter
    is 1 for pairs of the same class and 0 otherwise. With `sample_weight`,
    pair (i, j) is weighted by `w_i * w_j`.

    Example:

    ```python
    sim = similarity_matching_loss(conv_output, labels, num_classes=10)
    ```

    Args:
        features: The similarity branch's conv output `(B, H, W, C)`, or
            flat `(B, C)` features.
        labels: Sparse int labels `(B,)` or one-hot / soft `(B, n)`.
        num_classes: Number of classes n.
        sample_weight: Optional `(B,)` weights.

    Returns:
        A float32 scalar.

    Raises:
        ValueError: if `features` is neither 2-D nor 4-D.
    """
    features = ops.cast(features, "float32")
    if len(features.shape) == 4:
        variance = ops.var(features, axis=(1, 2))
        features = ops.sqrt(variance + EPSILON)
    elif len(features.shape) != 2:
        raise UserError(
            "similarity_matching_loss needs features of shape (B, H, W, C) "
            f"or (B, C); got shape {tuple(features.shape)}."
        )
    feature_similarity = cosine_similarity_matrix(features)
    label_similarity = cosine_similarity_matrix(
        _dense_labels(labels, num_classes)
    )
    squared_error = ops.square(feature_similarity - label_similarity)
    if sample_weight is None:
        return ops.mean(squared_error)
    weights = ops.reshape(
        ops.cast(ops.convert_to_tensor(sample_weight), "float32"), (-1,)
    )
    pair_weights = weights[:, None] * weights[None, :]
    return _weighted_mean(squared_error, pair_weights)


def predsim_loss(
    logits,
    sim_features,
    labels,
    num_classes: int,
    beta: float = 0.99,
    sample_weight=None,
):
    """PredSim's local loss: `(1 - beta) * CE + beta * sim`.

    Example:

    ```python
    loss = predsim_loss(logits, conv_output, labels, num_classes=10)
    ```

    Args:
        logits: The prediction branch's `(B, n)` logits.
        sim_features: The similarity branch's conv output `(B, H, W, C)`.
        labels: Sparse int labels `(B,)` or one-hot / soft `(B, n)`.
        num_classes: Number of classes n.
        beta: Weight of the similarity-matching loss.
        sample_weight: Optional `(B,)` weights, used by both terms.

    Returns:
        A float32 scalar.
    """
    prediction = cross_entropy(logits, labels, sample_weight)
    similarity = similarity_matching_loss(
        sim_features, labels, num_classes, sample_weight
    )
    return (1.0 - beta) * prediction + beta * similarity
