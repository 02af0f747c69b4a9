"""Tests for localgrad.losses, against numpy computations by hand."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from localgrad import losses

EPSILON = losses.EPSILON


def _numpy_cross_entropy(logits, labels):
    logits = logits - logits.max(axis=1, keepdims=True)
    log_probs = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    return -log_probs[np.arange(len(labels)), labels]


def _numpy_similarity_loss(features, labels):
    """Per-channel spatial std, cosine similarities, MSE vs same-class."""
    stds = np.sqrt(features.var(axis=(1, 2)) + EPSILON)
    units = stds / (np.linalg.norm(stds, axis=1, keepdims=True) + EPSILON)
    feature_similarity = units @ units.T
    label_similarity = (labels[:, None] == labels[None, :]).astype(float)
    return np.mean((feature_similarity - label_similarity) ** 2)


def _data(seed=0, batch=5, num_classes=3):
    rng = np.random.default_rng(seed)
    features = rng.normal(size=(batch, 3, 4, 6)).astype("float32")
    logits = rng.normal(size=(batch, num_classes)).astype("float32")
    labels = np.array([0, 1, 0, 2, 1][:batch])
    return features, logits, labels


def test_similarity_matching_loss_matches_numpy():
    features, _, labels = _data()
    loss = losses.similarity_matching_loss(features, labels, num_classes=3)
    expected = _numpy_similarity_loss(features.astype(np.float64), labels)
    np.testing.assert_allclose(float(loss), expected, rtol=1e-5)
    assert loss.dtype == "float32"


@pytest.mark.parametrize("labels,target", [([1, 1], 1.0), ([0, 1], 0.0)])
def test_similarity_matching_loss_on_a_tiny_hand_example(labels, target):
    # A 2x2 map with 2 channels. Example 0 has channel stds (3, 4), example
    # 1 has (4, 3): cosine similarity 24/25. The label similarity of the
    # pair is 1 for the same class, 0 otherwise; the diagonal matches.
    signs = np.array([[1.0, -1.0], [1.0, -1.0]], np.float32)
    example0 = np.stack([3 * signs, 4 * signs], axis=-1)
    example1 = np.stack([4 * signs, 3 * signs], axis=-1)
    features = np.stack([example0, example1])
    loss = losses.similarity_matching_loss(features, labels, num_classes=2)
    expected = 2 * (24 / 25 - target) ** 2 / 4
    np.testing.assert_allclose(float(loss), expected, rtol=1e-5)


def test_similarity_matching_loss_flat_features_and_label_forms():
    features, _, labels = _data()
    flat = features.reshape(5, -1)
    sparse = losses.similarity_matching_loss(flat, labels, 3)
    one_hot = losses.similarity_matching_loss(
        flat, keras.ops.one_hot(labels, 3), 3
    )
    units = flat / np.linalg.norm(flat, axis=1, keepdims=True)
    same = (labels[:, None] == labels[None, :]).astype(float)
    expected = np.mean((units @ units.T - same) ** 2)
    np.testing.assert_allclose(float(sparse), expected, rtol=1e-5)
    np.testing.assert_allclose(float(one_hot), expected, rtol=1e-5)


def test_similarity_matching_loss_zero_weight_drops_an_example():
    features, _, labels = _data()
    weights = np.array([1.0, 1.0, 0.0, 1.0, 1.0])
    weighted = losses.similarity_matching_loss(
        features, labels, 3, sample_weight=weights
    )
    keep = weights > 0
    dropped = losses.similarity_matching_loss(features[keep], labels[keep], 3)
    np.testing.assert_allclose(float(weighted), float(dropped), rtol=1e-5)


def test_similarity_matching_loss_has_finite_gradient_on_constant_maps():
    features = tf.constant(np.ones((3, 2, 2, 4), np.float32))
    with tf.GradientTape() as tape:
        tape.watch(features)
        loss = losses.similarity_matching_loss(features, [0, 1, 0], 2)
    gradient = tape.gradient(loss, features)
    assert np.all(np.isfinite(gradient))


def test_similarity_matching_loss_rejects_other_ranks():
    with pytest.raises(ValueError, match=r"\(B, H, W, C\)"):
        losses.similarity_matching_loss(np.zeros((2, 3, 4)), [0, 1], 2)


def test_cross_entropy_sparse_and_one_hot_match_numpy():
    _, logits, labels = _data()
    expected = _numpy_cross_entropy(logits.astype(np.float64), labels)
    for form in (labels, labels[:, None], keras.ops.one_hot(labels, 3)):
        np.testing.assert_allclose(
            float(losses.cross_entropy(logits, form)),
            expected.mean(),
            rtol=1e-5,
        )


def test_cross_entropy_soft_labels():
    _, logits, _ = _data()
    soft = np.full((5, 3), 0.2, np.float32)
    soft[:, 0] = 0.6
    log_probs = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    expected = -(soft * log_probs).sum(axis=1).mean()
    np.testing.assert_allclose(
        float(losses.cross_entropy(logits, soft)), expected, rtol=1e-5
    )


def test_cross_entropy_weighted_mean():
    _, logits, labels = _data()
    weights = np.array([2.0, 0.0, 1.0, 1.0, 0.5], np.float32)
    per_example = _numpy_cross_entropy(logits.astype(np.float64), labels)
    expected = (weights * per_example).sum() / weights.sum()
    np.testing.assert_allclose(
        float(losses.cross_entropy(logits, labels, weights)),
        expected,
        rtol=1e-5,
    )
    zero = losses.cross_entropy(logits, labels, np.zeros(5, np.float32))
    assert float(zero) == 0.0


def test_cross_entropy_casts_half_precision_logits_to_float32():
    _, logits, labels = _data()
    loss = losses.cross_entropy(logits.astype(np.float16), labels)
    assert loss.dtype == "float32"
    expected = _numpy_cross_entropy(
        logits.astype(np.float16).astype(np.float64), labels
    ).mean()
    np.testing.assert_allclose(float(loss), expected, rtol=1e-5)


@pytest.mark.parametrize("beta", [0.99, 0.5, 0.0])
def test_predsim_loss_mixes_cross_entropy_and_similarity(beta):
    features, logits, labels = _data(seed=1)
    loss = losses.predsim_loss(logits, features, labels, 3, beta=beta)
    ce = _numpy_cross_entropy(logits.astype(np.float64), labels).mean()
    sim = _numpy_similarity_loss(features.astype(np.float64), labels)
    np.testing.assert_allclose(
        float(loss), (1 - beta) * ce + beta * sim, rtol=1e-5
    )


def test_predsim_loss_default_beta_and_weights():
    features, logits, labels = _data(seed=2)
    weights = np.array([1.0, 1.0, 1.0, 0.0, 1.0], np.float32)
    loss = losses.predsim_loss(
        logits, features, labels, 3, sample_weight=weights
    )
    keep = weights > 0
    ce = _numpy_cross_entropy(logits[keep].astype(np.float64), labels[keep])
    sim = _numpy_similarity_loss(
        features[keep].astype(np.float64), labels[keep]
    )
    np.testing.assert_allclose(
        float(loss), 0.01 * ce.mean() + 0.99 * sim, rtol=1e-5
    )
