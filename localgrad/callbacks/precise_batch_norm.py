"""PreciseBatchNorm: BatchNorm statistics re-estimated with frozen weights."""

import itertools
from collections.abc import Iterable

import keras
import numpy as np
import tensorflow as tf

from localgrad.errors import UserError


class PreciseBatchNorm(keras.callbacks.Callback):
    """Re-estimates every BatchNorm's moving statistics on training batches.

    Greedy blocks change fast early in training, and BatchNorm's moving
    averages lag behind the weights. Before each evaluation (the
    validation of every epoch in `fit`, or an `evaluate` given this
    callback) and at the end of training, this callback runs
    `num_batches` batches of `data` through the model in training mode,
    with its weights frozen (no gradient, no update), and sets each
    BatchNormalization layer's `moving_mean` and `moving_variance` to the
    exact mean and (biased, as Keras computes it) variance of that layer's
    inputs over all those examples: not a moving average. Every
    BatchNormalization is re-estimated: the network's units, a
    `GreedyModel`'s heads (through `head_outputs`) and its classifier.
    Layers with `trainable=False` keep their statistics (Keras freezes
    them). Nothing else changes. When the weights did not change since the
    last estimate (same `model.optimizer.iterations`), it is not redone.

    As in training, each layer's inputs come from a forward pass in which
    the layers before it normalise with their batch statistics.

    Example:

    ```python
    train = localgrad.data.load("fashion_mnist", "train", 128)
    model.fit(train, epochs=4, validation_data=test,
              callbacks=[localgrad.callbacks.PreciseBatchNorm(60, train)])
    ```

    Args:
        num_batches: How many batches of `data` each estimate uses.
        data: Training batches: a `tf.data.Dataset` or any iterable of
            `x` or `(x, y[, sample_weight])` batches, iterated afresh for
            each estimate (repeat it if it has fewer than `num_batches`).

    Raises:
        ValueError: if `num_batches` is not a positive integer.
    """

    def __init__(self, num_batches: int, data: Iterable):
        super().__init__()
        if isinstance(num_batches, bool) or not (
            isinstance(num_batches, int) and num_batches >= 1
        ):
            raise UserError(
                f"num_batches must be a positive integer; got {num_batches!r}."
            )
        self.num_batches = num_batches
        self.data = data
        self._estimated_at = None

    def recompute(self, model: keras.Model | None = None) -> int:
        """Sets the BatchNorm statistics of `model` (default: `self.model`).

        Args:
            model: The model to update.

        Returns:
            The number of examples the statistics were computed on.

        Raises:
            ValueError: if `data` has fewer than `num_batches` batches.
        """
        model = model or self.model
        layers = [
            layer for layer in batch_norm_layers(model) if layer.trainable
        ]
        saved = [
            (layer.moving_mean.numpy(), layer.moving_variance.numpy())
            for layer in layers
        ]
        momenta = [layer.momentum for layer in layers]
        try:
            counts, first, second = self._moments(model, layers)
        finally:
            for layer, momentum, (mean, variance) in zip(
                layers, momenta, saved
            ):
                layer.momentum = momentum
                layer.moving_mean.assign(mean)
                layer.moving_variance.assign(variance)
        for layer, mean, mean_square in zip(layers, first, second):
            mean = mean / counts
            variance = np.maximum(mean_square / counts - mean**2, 0.0)
            layer.moving_mean.assign(mean.astype(layer.moving_mean.dtype))
            layer.moving_variance.assign(
                variance.astype(layer.moving_variance.dtype)
            )
        self._estimated_at = _step(model)
        return counts

    def on_test_begin(self, logs=None):
        self._recompute_if_trained()

    def on_train_end(self, logs=None):
        self._recompute_if_trained()

    def _recompute_if_trained(self):
        step = _step(self.model)
        if step is None or step != self._estimated_at:
            self.recompute()

    def _moments(self, model, layers):
        """Examples seen, and per layer sums of n * mean and n * E[x^2]."""
        for layer in layers:
            # With momentum 0 a training-mode call stores the batch moments.
            layer.momentum = 0.0
            layer.moving_mean.assign(keras.ops.zeros_like(layer.moving_mean))
            layer.moving_variance.assign(
                keras.ops.ones_like(layer.moving_variance)
            )
        if hasattr(model, "head_outputs"):
            forward = tf.function(
                lambda x: model.head_outputs(x, training=True)
            )
        else:
            forward = tf.function(lambda x: model(x, training=True))
        count = 0
        first = [np.zeros(layer.moving_mean.shape) for layer in layers]
        second = [np.zeros(layer.moving_mean.shape) for layer in layers]
        batches = 0
        for batch in itertools.islice(iter(self.data), self.num_batches):
            x = batch[0] if isinstance(batch, (tuple, list)) else batch
            forward(x)
            size = int(keras.ops.shape(x)[0])
            count += size
            batches += 1
            for i, layer in enumerate(layers):
                mean = layer.moving_mean.numpy().astype(np.float64)
                variance = layer.moving_variance.numpy().astype(np.float64)
                first[i] += size * mean
                second[i] += size * (variance + mean**2)
        if batches < self.num_batches:
            raise UserError(
                f"PreciseBatchNorm needs {self.num_batches} batches but the "
                f"data gave {batches}: repeat the data set (`.repeat()`) or "
                "lower num_batches."
            )
        return count, first, second


def batch_norm_layers(model: keras.layers.Layer) -> list:
    """Every `keras.layers.BatchNormalization` inside `model`, once each.

    Walks the layers a layer holds as attributes (or in lists, tuples and
    dicts of its attributes), which is where Keras tracks sub-layers, and
    a `GreedyModel`'s public `network` and `heads`.

    Example:

    ```python
    len(batch_norm_layers(model))  # units', heads' and classifier's
    ```
    """
    found, seen = [], set()

    def visit(value):
        if isinstance(value, (list, tuple)):
            for item in value:
                visit(item)
        elif isinstance(value, dict):
            for item in value.values():
                visit(item)
        elif isinstance(value, keras.layers.Layer) and id(value) not in seen:
            seen.add(id(value))
            if isinstance(value, keras.layers.BatchNormalization):
                found.append(value)
            for attribute in vars(value).values():
                visit(attribute)

    visit(model)
    visit(getattr(model, "network", None))
    visit(list(getattr(model, "heads", [])))
    return found


def _step(model):
    optimizer = getattr(model, "optimizer", None)
    return None if optimizer is None else int(optimizer.iterations)
