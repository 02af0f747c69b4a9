"""Associated Learning's local losses, as pure functions of tensors.

Component i of an `AssociatedModel` learns from two losses (Kao & Chen,
2021): the associated loss MSE(b_i(s_i), sg(t_i)), which trains its
forward side f_i and its bridge b_i, and the autoencoder loss
MSE(h_i(t_i), sg(t_{i-1})), which trains its label side g_i and h_i. The
targets are detached here, so each loss reaches only the parameters it
trains, whatever tape holds it.
"""

import keras
from keras import ops

from localgrad.blocks.objective import plain_mean

_MEAN_SQUARED = keras.losses.MeanSquaredError()


def associated_loss(bridged, labels, sample_weight=None):
    """MSE(b_i(s_i), sg(t_i)): the bridge's output against the label code.

    Example:

    ```python
    associated_loss(bridge(features), encoder(previous_labels))
    ```

    Args:
        bridged: b_i(s_i), shape `(batch, n)`.
        labels: t_i = g_i(t_{i-1}), shape `(batch, n)`; not trained by
            this loss.
        sample_weight: Optional per-example weights.

    Returns:
        A float32 scalar: the per-replica batch mean.
    """
    return _mean_squared(bridged, labels, sample_weight)


def autoencoder_loss(decoded, previous_labels, sample_weight=None):
    """MSE(h_i(t_i), sg(t_{i-1})): the decoder's output against its input.

    Example:

    ```python
    autoencoder_loss(decoder(encoder(previous_labels)), previous_labels)
    ```

    Args:
        decoded: h_i(t_i), shape `(batch, width of t_{i-1})`.
        previous_labels: t_{i-1} (the one-hot label for i = 1); not
            trained by this loss.
        sample_weight: Optional per-example weights.

    Returns:
        A float32 scalar: the per-replica batch mean.
    """
    return _mean_squared(decoded, previous_labels, sample_weight)


def _mean_squared(predictions, targets, sample_weight):
    targets = ops.stop_gradient(ops.cast(targets, "float32"))
    predictions = ops.cast(predictions, "float32")
    return plain_mean(_MEAN_SQUARED, targets, predictions, sample_weight)
