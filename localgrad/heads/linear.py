"""The `linear` head: global average pooling and one Dense layer."""

from collections.abc import Sequence

import keras

from localgrad.heads.base import Head, require_spatial


@keras.saving.register_keras_serializable(package="localgrad")
class LinearHead(Head):
    """Global average pooling, then Dense(n); flat features skip the pooling.

    Example:

    ```python
    head = LinearHead((8, 8, 16), num_classes=10)
    head(np.zeros((4, 8, 8, 16))).shape  # (4, 10)
    ```

    Args:
        input_shape: `(H, W, C)` or `(C,)`.
        num_classes: Number of classes.
        **kwargs: Passed to `keras.layers.Layer`.

    Raises:
        ValueError: for features that are neither flat nor `(H, W, C)`.
    """

    head_name = "linear"

    def __init__(self, input_shape: Sequence[int], num_classes: int, **kwargs):
        super().__init__(input_shape, num_classes, **kwargs)
        sub = self._sublayer_kwargs()
        if len(self.feature_shape) == 1:
            self.pool = None
        else:
            require_spatial(self.head_name, self.feature_shape)
            self.pool = keras.layers.GlobalAveragePooling2D(**sub)
        self.classifier = keras.layers.Dense(num_classes, **sub)
        self.build((None,) + self.feature_shape)

    def call(self, features, training=None):
        outputs = features if self.pool is None else self.pool(features)
        return self.classifier(outputs)
