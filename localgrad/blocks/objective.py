"""Objectives: the local loss a block learns from.

An objective is a pure function of tensors (the block's output hand-over
and the targets) that gives the block's local loss and the predictions its
metrics read, plus the auxiliary layers it trains along with the block.
The losses themselves stay pure functions (`localgrad.losses`, Keras
losses); an objective only says which of them a block uses, on what.
"""

import abc
from collections.abc import Sequence
from typing import Any, NamedTuple

import keras
import tensorflow as tf

from localgrad.blocks.hand_over import HandOver


class LocalLoss(NamedTuple):
    """An objective's value on one batch.

    Attributes:
        loss: The scalar local loss (a plain per-replica batch mean).
        predictions: What the block's metrics read (class scores).
        terms: None, or the named terms of `loss` (`{name: scalar}`):
            those named in the objective's `loss_terms` are logged per
            block (Associated Learning's `associated_loss` and
            `autoencoder_loss`); the objective may read any of them again
            after the step, in its `update_state` (the transport
            objective's `base_loss` and `transport_term`).
        hand_over: The block's output hand-over when the objective adds to
            it (Associated Learning's label-side stream), or None: the
            units' output is handed over.
    """

    loss: Any
    predictions: Any
    terms: Any = None
    hand_over: Any = None


class Objective(abc.ABC):
    """The local objective of one block.

    Subclasses give `layers` (the auxiliary layers trained with the block,
    whose variables the block's optimizer updates) and `__call__`, the
    loss of the block's output. A new method plugs in as an objective
    (a transport term wrapping another objective, Associated Learning's
    losses over a label-side stream) without changing blocks or
    executors: an objective whose loss reads more of the block's forward
    pass than its output overrides `run`; one that keeps state or
    trackers of its own gives `metrics`, `update_state` and `logs`.

    Example:

    ```python
    class MeanSquared(Objective):
        def __init__(self, head):
            self.head = head

        @property
        def layers(self):
            return [self.head]

        def __call__(self, outputs, y, sample_weight=None, training=False):
            predictions = self.head(outputs.features, training=training)
            return LocalLoss(keras.ops.mean((predictions - y) ** 2),
                             predictions)
    ```
    """

    @property
    @abc.abstractmethod
    def layers(self) -> list:
        """The auxiliary layers this objective trains with its block."""

    @property
    def loss_terms(self) -> tuple:
        """The names of the `LocalLoss.terms` it reports (logged per block)."""
        return ()

    @abc.abstractmethod
    def __call__(
        self, outputs: HandOver, y, sample_weight=None, training=False
    ) -> LocalLoss:
        """The local loss of a block's output on one batch.

        Args:
            outputs: The block's output hand-over (not detached: the loss's
                gradient flows into the block).
            y: The batch's targets.
            sample_weight: Optional per-example weights.
            training: Whether the auxiliary layers run in training mode.

        Returns:
            A `LocalLoss`.
        """

    def run(
        self,
        units: Sequence[keras.layers.Layer],
        inputs: HandOver,
        y,
        sample_weight=None,
        training=False,
    ) -> tuple[HandOver, LocalLoss]:
        """Runs a block's units on `inputs` and scores their output.

        The block's forward pass under its objective: by default the units
        in order, then `__call__` on their output. An objective whose loss
        reads the pass itself (how far the units move their input)
        overrides this.

        Returns:
            `(outputs, local)`: the units' output hand-over (not detached)
            and its `LocalLoss`.
        """
        outputs = run_units(units, inputs, training)
        return outputs, self(outputs, y, sample_weight, training)

    @property
    def metrics(self) -> list:
        """The objective's own trackers (listed in the model's `metrics`)."""
        return []

    def update_state(self, local: LocalLoss, training: bool) -> None:
        """Updates the objective's state after one batch.

        Called after the block's optimizer step (`training=True`) and
        after each evaluation batch (`training=False`), outside any XLA
        computation, with the batch's `LocalLoss`. By default, nothing.
        """
        return None

    def logs(self) -> dict:
        """What the objective adds to the block's logs (`{name: value}`)."""
        return {metric.name: metric.result() for metric in self.metrics}


class HeadObjective(Objective):
    """A head's loss: the head's own `local_loss`, or `loss` on its logits.

    A head with a `local_loss(features, y, sample_weight, training)` method
    (PredSim's) gives its own loss; any other head gives logits, scored by
    the compiled loss. The last block's objective is a `HeadObjective` of
    the network's own classifier.

    Example:

    ```python
    objective = HeadObjective(head, keras.losses.SparseCategoricalCrossentropy(
        from_logits=True))
    loss, logits = objective(HandOver(features), y)
    ```

    Args:
        head: A layer mapping the block's features to class logits.
        loss: A Keras loss (or its name) applied to the head's logits.
    """

    def __init__(self, head: keras.layers.Layer, loss):
        self.head = head
        self.loss = keras.losses.get(loss)

    @property
    def layers(self) -> list:
        return [self.head]

    def __call__(
        self, outputs: HandOver, y, sample_weight=None, training=False
    ) -> LocalLoss:
        features = outputs.features
        if hasattr(self.head, "local_loss"):
            loss, logits = self.head.local_loss(
                features, y, sample_weight=sample_weight, training=training
            )
            return LocalLoss(loss, logits)
        logits = self.head(features, training=training)
        return LocalLoss(
            plain_mean(self.loss, y, logits, sample_weight), logits
        )


def run_units(
    units: Sequence[keras.layers.Layer], inputs: HandOver, training=False
) -> HandOver:
    """Runs `units` in order on a hand-over's features.

    Example:

    ```python
    outputs = run_units(block.units, HandOver(x), training=False)
    ```
    """
    features = inputs.features
    for unit in units:
        features = unit(features, training=training)
    return inputs._replace(features=features)


def plain_mean(loss, y, predictions, sample_weight=None):
    """A Keras loss as a plain per-replica batch mean.

    Keras losses divide by the number of replicas inside a replica context;
    local losses are kept as plain means and scaled once, in the block step.

    Example:

    ```python
    plain_mean(keras.losses.MeanSquaredError(), y, predictions)
    ```
    """
    value = loss(y, predictions, sample_weight)
    replicas = tf.distribute.get_replica_context()
    if replicas is not None and replicas.num_replicas_in_sync > 1:
        value *= replicas.num_replicas_in_sync
    return value
