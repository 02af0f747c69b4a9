"""PreciseBatchNorm: BatchNorm statistics re-estimated with frozen weights."""

import itertools
import weakref
from collections.abc import Callable, Iterable

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from localgrad.callbacks.fit_batches import fit_batches
from localgrad.errors import UserError

# model -> {the estimated layers' ids: traced forward pass}, shared by
# every PreciseBatchNorm of a model (fit adds a new one each time).
_FORWARD_PASSES = weakref.WeakKeyDictionary()


class PreciseBatchNorm(keras.callbacks.Callback):
    """Re-estimates every BatchNorm's moving statistics on training batches.

    Greedy blocks change fast early in training, and BatchNorm's moving
    averages lag behind the weights. Before each evaluation (the
    validation of every epoch in `fit`, or an `evaluate` given this
    callback), at the end of every epoch (so that a checkpoint written
    after it holds them: put this callback before the checkpoint's) and
    at the end of training, this callback runs
    `num_batches` batches of `data` through the model in training mode,
    with its weights frozen (no gradient, no update), and sets each
    BatchNormalization layer's `moving_mean` and `moving_variance` to the
    exact mean and (biased, as Keras computes it) variance of that layer's
    inputs over all those examples: not a moving average. Every
    BatchNormalization is re-estimated: the network's units, a
    `GreedyModel`'s heads (through `head_outputs`) and its classifier.
    Layers with `trainable=False` keep their statistics (Keras freezes
    them). Nothing else changes. When the weights did not change since the
    last estimate (same `model.optimizer.iterations`), it is not redone;
    nor in a `fit` that has not trained yet (a resumed run keeps the
    statistics its checkpoint holds until it trains).

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
            each estimate (repeat it if it has fewer than `num_batches`);
            or a function returning one, called for each estimate (a new
            `tf.data` pipeline gives the same batches every time, where
            iterating one pipeline again may reshuffle).
        notice: Log one line at the first estimate, saying that the
            statistics were replaced and how to keep Keras' instead.

    Raises:
        ValueError: if `num_batches` is not a positive integer.
    """

    def __init__(
        self,
        num_batches: int,
        data: Iterable | Callable[[], Iterable],
        notice: bool = False,
    ):
        super().__init__()
        if isinstance(num_batches, bool) or not (
            isinstance(num_batches, int) and num_batches >= 1
        ):
            raise UserError(
                f"num_batches must be a positive integer; got {num_batches!r}."
            )
        self.num_batches = num_batches
        self.data = data
        self.notice = notice
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
        if self.notice:
            logging.warning(
                "BatchNorm statistics re-estimated on %d training batches "
                "before each evaluation and at the end of fit, weights "
                "frozen (GreedyModel(precise_batch_norm=0), or "
                "--config.precise_bn_batches=0, keeps Keras' moving "
                "averages).",
                self.num_batches,
            )
            self.notice = False
        return counts

    def on_train_begin(self, logs=None):
        self._estimated_at = _step(self.model)

    def on_test_begin(self, logs=None):
        self._recompute_if_trained()

    def on_epoch_end(self, epoch, logs=None):
        self._recompute_if_trained()

    def on_train_end(self, logs=None):
        self._recompute_if_trained()

    def _recompute_if_trained(self):
        step = _step(self.model)
        if step is None or step != self._estimated_at:
            self.recompute()

    def _forward_of(self, model, layers):
        """A traced training-mode forward pass giving the batch moments.

        It returns every layer's moving mean and variance as the forward
        pass left them (with momentum 0: the batch's moments), read in
        the same graph: no host round trip per layer. Traced once per
        model and set of layers.
        """
        passes = _FORWARD_PASSES.setdefault(model, {})
        key = tuple(id(layer) for layer in layers)
        if key not in passes:
            # Weakly: the map must not keep the model alive.
            model_ref = weakref.ref(model)

            def forward(x):
                model = model_ref()
                getattr(model, "head_outputs", model)(x, training=True)
                return [
                    (layer.moving_mean.value, layer.moving_variance.value)
                    for layer in layers
                ]

            passes[key] = tf.function(forward, reduce_retracing=True)
        return passes[key]

    def _moments(self, model, layers):
        """Examples seen, and per layer sums of n * mean and n * E[x^2]."""
        for layer in layers:
            # With momentum 0 a training-mode call stores the batch moments.
            layer.momentum = 0.0
            layer.moving_mean.assign(keras.ops.zeros_like(layer.moving_mean))
            layer.moving_variance.assign(
                keras.ops.ones_like(layer.moving_variance)
            )
        forward = self._forward_of(model, layers)
        count = 0
        first = [np.zeros(layer.moving_mean.shape) for layer in layers]
        second = [np.zeros(layer.moving_mean.shape) for layer in layers]
        batches = 0
        data = self.data() if callable(self.data) else self.data
        for batch in itertools.islice(iter(data), self.num_batches):
            x = batch[0] if isinstance(batch, (tuple, list)) else batch
            moments = forward(x)
            size = int(keras.ops.shape(x)[0])
            count += size
            batches += 1
            for i, (mean, variance) in enumerate(moments):
                mean = mean.numpy().astype(np.float64)
                variance = variance.numpy().astype(np.float64)
                first[i] += size * mean
                second[i] += size * (variance + mean**2)
        if batches < self.num_batches:
            raise UserError(
                f"PreciseBatchNorm needs {self.num_batches} batches but the "
                f"data gave {batches}: repeat the data set (`.repeat()`) or "
                "lower num_batches."
            )
        return count, first, second


def precise_by_default(model: keras.Model, arguments: dict) -> list:
    """`fit`'s callbacks, with a `PreciseBatchNorm` of the model's own.

    What a `GreedyModel`'s `fit` does with `precise_batch_norm=n`: when
    the model holds a trainable BatchNormalization and the callbacks hold
    no `PreciseBatchNorm` already, one is added that re-estimates the
    statistics on `n` batches of `fit`'s own training data (see
    `fit_batches`) before each evaluation, at the end of each epoch and
    of `fit`, and says so in one line when it first does. Data
    `fit_batches` cannot read again leaves the callbacks as they were,
    with a line saying how to ask for the estimate.

    Example:

    ```python
    callbacks = precise_by_default(model, {"x": train, "callbacks": []})
    ```

    Args:
        model: A model with a `precise_batch_norm` attribute (0: off).
        arguments: `fit`'s arguments by name.

    Returns:
        The callbacks to give Keras' `fit`.
    """
    callbacks = list(arguments.get("callbacks") or [])
    num_batches = model.precise_batch_norm
    if (
        not num_batches
        or any(isinstance(c, PreciseBatchNorm) for c in callbacks)
        or not any(layer.trainable for layer in batch_norm_layers(model))
    ):
        return callbacks
    found = fit_batches(arguments, num_batches)
    if found is None:
        kind = type(arguments.get("x")).__name__
        logging.warning(
            "BatchNorm statistics stay Keras' moving averages, which lag "
            "behind greedy blocks: fit's data (%s) cannot be read twice. "
            "Pass callbacks=[localgrad.callbacks.PreciseBatchNorm(%d, "
            "training_batches)], or precise_batch_norm=0 to silence this.",
            kind,
            num_batches,
        )
        return callbacks
    data, count = found
    # First, so that a checkpoint at the end of an epoch holds the estimate.
    return [PreciseBatchNorm(count, data, notice=True)] + callbacks


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
