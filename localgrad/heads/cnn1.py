"""The `cnn1` head of Karkar et al.'s module-wise training ("1CNN")."""

from collections.abc import Sequence

import keras

from localgrad.heads.base import Head, require_spatial
from localgrad.heads.pooling import AdaptiveAveragePooling2D


@keras.saving.register_keras_serializable(package="localgrad")
class CNN1Head(Head):
    """One convolution, then a linear classifier (Karkar et al., 2023).

    On an H x W x C map: 3x3 convolution C -> C without bias ("same"
    padding), ReLU, adaptive average pooling to min(H, 2) x min(W, 2),
    batch normalization, flatten, Dense(n). The batch normalization uses
    `bn_momentum` (0.9 by default) and epsilon 1e-5, as the network's
    units (PyTorch's defaults). The pooled size is that of DGL's `cnn`
    head: methods.md §7 names the pooling but not its size.

    Example:

    ```python
    head = CNN1Head((8, 8, 16), num_classes=10)
    head(np.zeros((4, 8, 8, 16))).shape  # (4, 10)
    ```

    Args:
        input_shape: `(H, W, C)`.
        num_classes: Number of classes.
        **kwargs: Passed to `Head` (e.g. `bn_momentum`) and
            `keras.layers.Layer`.

    Raises:
        ValueError: for flat features (use 'linear' or 'mlp').
    """

    head_name = "cnn1"

    def __init__(self, input_shape: Sequence[int], num_classes: int, **kwargs):
        super().__init__(input_shape, num_classes, **kwargs)
        height, width, channels = require_spatial(
            self.head_name, self.feature_shape
        )
        sub = self._sublayer_kwargs()
        self.conv = keras.layers.Conv2D(
            channels, 3, padding="same", use_bias=False, **sub
        )
        self.pool = AdaptiveAveragePooling2D(
            (min(height, 2), min(width, 2)), **sub
        )
        self.norm = self._batch_norm()
        self.flatten = keras.layers.Flatten(**sub)
        self.classifier = keras.layers.Dense(num_classes, **sub)
        self.build((None,) + self.feature_shape)

    def call(self, features, training=None):
        outputs = self.pool(keras.ops.relu(self.conv(features)))
        outputs = self.norm(outputs, training=training)
        return self.classifier(self.flatten(outputs))
