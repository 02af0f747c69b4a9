"""The `predsim` head of Nøkland & Eidnes (2019), with its own loss."""

from collections.abc import Sequence

import keras

from localgrad import losses
from localgrad.errors import UserError
from localgrad.heads.base import Head, require_spatial

# Largest flattened size of the prediction branch at width_mult = 1.
PREDICTION_MAX_FEATURES = 512
# Weight of the similarity-matching loss in (1 - beta) * CE + beta * sim.
BETA = 0.99


@keras.saving.register_keras_serializable(package="localgrad")
class PredSimHead(Head):
    """A prediction branch and a similarity-matching branch.

    Prediction branch: 2x2 average pooling (stride 2, padding "same"),
    repeated until the flattened map has at most `512 * width_mult` values
    (or the map is 1x1); flatten; Dense(n). `call` returns its logits.

    Similarity branch (used by `local_loss` only): 3x3 conv C -> C without
    bias, padding "same"; then `losses.similarity_matching_loss` (per-channel
    spatial standard deviations, their cosine-similarity matrix over the
    batch, MSE against the labels' one). The local loss is
    `(1 - beta) * CE + beta * sim` (`losses.predsim_loss`). Needs a map of
    at least 2x2, so the spatial standard deviations are not all zero.

    Example:

    ```python
    head = PredSimHead((8, 8, 16), num_classes=10)
    features, labels = np.random.rand(4, 8, 8, 16), np.array([0, 1, 2, 1])
    logits = head(features)  # (4, 10)
    loss, logits = head.local_loss(features, labels)  # scalar, (4, 10)
    ```

    Args:
        input_shape: `(H, W, C)` with H, W >= 2.
        num_classes: Number of classes.
        width_mult: Multiplies the 512-value limit of the prediction branch.
        beta: Weight of the similarity loss.
        **kwargs: Passed to `keras.layers.Layer`.

    Raises:
        ValueError: for flat features, a map smaller than 2x2, a
            non-positive width_mult or a beta outside [0, 1].
    """

    head_name = "predsim"

    def __init__(
        self,
        input_shape: Sequence[int],
        num_classes: int,
        width_mult: float = 1.0,
        beta: float = BETA,
        **kwargs,
    ):
        super().__init__(input_shape, num_classes, **kwargs)
        height, width, channels = require_spatial(
            self.head_name, self.feature_shape, min_size=2
        )
        if not width_mult > 0:
            raise UserError(
                f"Head 'predsim' needs width_mult > 0; got {width_mult}."
            )
        if not 0.0 <= beta <= 1.0:
            raise UserError(f"Head 'predsim' needs beta in [0, 1]; got {beta}.")
        self.width_mult = float(width_mult)
        self.beta = float(beta)
        self.max_features = max(int(PREDICTION_MAX_FEATURES * width_mult), 1)
        sub = self._sublayer_kwargs()
        self.pools = []
        while height * width * channels > self.max_features and (
            height > 1 or width > 1
        ):
            window = (2 if height > 1 else 1, 2 if width > 1 else 1)
            self.pools.append(
                keras.layers.AveragePooling2D(
                    window, strides=window, padding="same", **sub
                )
            )
            height, width = -(-height // window[0]), -(-width // window[1])
        self.flatten = keras.layers.Flatten(**sub)
        self.classifier = keras.layers.Dense(num_classes, **sub)
        self.similarity_conv = keras.layers.Conv2D(
            channels, 3, padding="same", use_bias=False, **sub
        )
        self.build((None,) + self.feature_shape)

    def build(self, input_shape):
        features = keras.KerasTensor(input_shape, dtype=self.compute_dtype)
        self.call(features)
        self.similarity_conv(features)

    def call(self, features, training=None):
        outputs = features
        for pool in self.pools:
            outputs = pool(outputs)
        return self.classifier(self.flatten(outputs))

    def local_loss(self, features, labels, sample_weight=None, training=True):
        """The predsim loss of a batch and the prediction branch's logits.

        Args:
            features: The block output (this head's input), `(B, H, W, C)`.
            labels: Sparse int labels `(B,)` or one-hot / soft `(B, n)`.
            sample_weight: Optional `(B,)` weights; the loss is then a
                weighted mean.
            training: Passed to the sublayers.

        Returns:
            `(loss, logits)`: a float32 scalar and the `(B, n)` logits.
        """
        logits = self(features, training=training)
        sim_features = self.similarity_conv(features, training=training)
        loss = losses.predsim_loss(
            logits,
            sim_features,
            labels,
            self.num_classes,
            beta=self.beta,
            sample_weight=sample_weight,
        )
        return loss, logits

    def get_config(self):
        config = super().get_config()
        config.update(width_mult=self.width_mult, beta=self.beta)
        return config
