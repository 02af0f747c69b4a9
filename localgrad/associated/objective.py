"""AssociatedObjective: a component's two local losses and its label code."""

import keras
from keras import ops

from localgrad.associated import losses
from localgrad.associated.components import decode
from localgrad.blocks.hand_over import HandOver
from localgrad.blocks.objective import LocalLoss, Objective

ASSOCIATED = "associated_loss"
AUTOENCODER = "autoencoder_loss"


class AssociatedObjective(Objective):
    """The objective of Associated Learning's component i.

    On the block's output hand-over `(features=s_i, labels=t_{i-1})` it
    computes t_i = g_i(t_{i-1}) (t_0: the one-hot label, made from `y`
    by the first component), the associated loss MSE(b_i(s_i), sg(t_i))
    and the autoencoder loss MSE(h_i(t_i), sg(t_{i-1})); it hands over
    `(s_i, t_i)`. Its metrics read the shortcut prediction at this depth,
    h_1(…h_i(b_i(s_i))), through the decoders of the components before it
    (read, not trained: the block's optimizer updates only f_i, g_i, b_i
    and h_i).

    Example:

    ```python
    objective = AssociatedObjective(encoder, bridge, decoders[: i + 1],
                                    num_classes=10, sparse_labels=True)
    local = objective(HandOver(features, labels=previous_codes), y)
    local.terms["associated_loss"], local.hand_over.labels  # t_i
    ```

    Args:
        encoder: g_i.
        bridge: b_i.
        decoders: h_1..h_i (the last one is this component's own).
        num_classes: The number of classes (the width of t_0).
        sparse_labels: Whether `y` holds class indices (else one-hot or
            soft rows).
    """

    def __init__(
        self,
        encoder: keras.layers.Layer,
        bridge: keras.layers.Layer,
        decoders: list,
        num_classes: int,
        sparse_labels: bool = True,
    ):
        self.encoder = encoder
        self.bridge = bridge
        self.decoders = list(decoders)
        self.num_classes = int(num_classes)
        self.sparse_labels = bool(sparse_labels)

    @property
    def layers(self) -> list:
        return [self.encoder, self.bridge, self.decoders[-1]]

    @property
    def label_side_layers(self) -> list:
        """g_i and h_i: the layers the autoencoder loss trains."""
        return [self.encoder, self.decoders[-1]]

    @property
    def loss_terms(self) -> tuple:
        return (ASSOCIATED, AUTOENCODER)

    def first_labels(self, y):
        """t_0: `y` as float32 one-hot (or its given dense) rows."""
        if self.sparse_labels:
            indices = ops.reshape(ops.cast(y, "int32"), (-1,))
            return ops.one_hot(indices, self.num_classes)
        return ops.cast(y, "float32")

    def __call__(
        self, outputs: HandOver, y, sample_weight=None, training=False
    ) -> LocalLoss:
        previous = outputs.labels
        if previous is None:
            previous = self.first_labels(y)
        labels = self.encoder(previous, training=training)
        bridged = self.bridge(outputs.features, training=training)
        decoded = self.decoders[-1](labels, training=training)
        associated = losses.associated_loss(bridged, labels, sample_weight)
        autoencoder = losses.autoencoder_loss(decoded, previous, sample_weight)
        return LocalLoss(
            loss=associated + autoencoder,
            predictions=decode(self.decoders, bridged, training),
            terms={ASSOCIATED: associated, AUTOENCODER: autoencoder},
            hand_over=outputs._replace(labels=labels),
        )
