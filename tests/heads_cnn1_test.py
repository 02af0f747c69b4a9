"""Tests for the `cnn1` head (Karkar et al.)."""

import numpy as np
import pytest

from localgrad import heads


def _conv3x3_same(features, kernel):
    """A 3x3 'same' convolution without bias, written out in numpy."""
    batch, height, width, _ = features.shape
    padded = np.pad(features, ((0, 0), (1, 1), (1, 1), (0, 0)))
    out = np.zeros((batch, height, width, kernel.shape[-1]), "float64")
    for i in range(height):
        for j in range(width):
            window = padded[:, i : i + 3, j : j + 3, :]
            out[:, i, j, :] = np.einsum("bhwc,hwcd->bd", window, kernel)
    return out


def test_cnn1_is_conv_relu_pool_batchnorm_dense():
    rng = np.random.default_rng(0)
    features = rng.normal(size=(3, 4, 6, 2)).astype("float32")
    head = heads.build("cnn1", (4, 6, 2), num_classes=5)
    assert head.head_name == "cnn1"
    assert head.conv.kernel.shape == (3, 3, 2, 2) and not head.conv.use_bias
    assert head.norm.momentum == pytest.approx(0.9)
    # Give the batch normalization statistics of its own, then compute
    # the inference-mode logits by hand.
    head.norm.moving_mean.assign(rng.normal(size=2).astype("float32"))
    head.norm.moving_variance.assign(rng.uniform(0.5, 2, 2).astype("float32"))
    hidden = np.maximum(_conv3x3_same(features, head.conv.kernel.numpy()), 0)
    # Average pooling of a 4 x 6 map to 2 x 2: 2 x 3 windows.
    pooled = hidden.reshape(3, 2, 2, 2, 3, 2).mean(axis=(2, 4))
    norm = head.norm
    normalized = (pooled - norm.moving_mean.numpy()) / np.sqrt(
        norm.moving_variance.numpy() + norm.epsilon
    ) * norm.gamma.numpy() + norm.beta.numpy()
    logits = (
        normalized.reshape(3, -1) @ head.classifier.kernel.numpy()
        + head.classifier.bias.numpy()
    )
    np.testing.assert_allclose(head(features), logits, rtol=1e-4, atol=1e-5)


def test_cnn1_keeps_small_maps_and_rejects_flat_features():
    head = heads.build("cnn1", (1, 1, 8), num_classes=3)
    assert head.pool.output_size == (1, 1)
    with pytest.raises(ValueError, match="'cnn1' needs a spatial"):
        heads.build("cnn1", (8,), num_classes=3)
