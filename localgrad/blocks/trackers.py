"""A block's metric trackers: its local loss and the compiled metrics."""

import keras


class BlockTrackers:
    """The loss and metric trackers of one block.

    Every block tracks `block_k_loss`, one `block_k_<term>` per named
    term of its objective (`Objective.loss_terms`) and one
    `block_k_<metric>` per compiled metric; the last block also tracks the
    network's own metrics (the compiled names, without prefix).

    Example:

    ```python
    trackers = BlockTrackers.create(1, ["accuracy"], loss, network=False)
    trackers.update(local_loss, y, sample_weight)
    trackers.results()  # {"block_1_loss": ..., "block_1_accuracy": ...}
    ```

    Args:
        loss: The `keras.metrics.Mean` of the local loss.
        block_metrics: The block's own `block_k_<metric>` metrics.
        network_metrics: The network's metrics (last block only).
        terms: `{term: keras.metrics.Mean}` of the loss's named terms.
    """

    def __init__(self, loss, block_metrics, network_metrics=(), terms=None):
        self.loss = loss
        self.block_metrics = list(block_metrics)
        self.network_metrics = list(network_metrics)
        self.terms = dict(terms or {})

    @property
    def losses(self) -> list:
        """The loss tracker, then those of the loss's terms."""
        return [self.loss] + list(self.terms.values())

    @classmethod
    def create(
        cls,
        index: int,
        metrics: list,
        compiled_loss,
        network: bool,
        terms: tuple = (),
    ) -> "BlockTrackers":
        """Trackers for block `index` from the compiled metric specs.

        Args:
            index: The block's index k.
            metrics: The metrics given to `compile` (names or objects).
            compiled_loss: The compiled loss (sparse or dense labels decide
                which accuracy `"accuracy"` means).
            network: Whether this block also tracks the network's metrics.
            terms: The names of the loss terms to track.
        """
        sparse = _is_sparse_loss(compiled_loss)
        prefix = f"block_{index}_"
        return cls(
            keras.metrics.Mean(name=prefix + "loss"),
            [_metric_copy(m, prefix, sparse) for m in metrics],
            [_metric_copy(m, "", sparse) for m in metrics] if network else [],
            {term: keras.metrics.Mean(name=prefix + term) for term in terms},
        )

    @property
    def ran(self) -> bool:
        """Whether the block saw a batch since the last reset."""
        return bool(self.loss.count > 0)

    def update(self, local_loss, y, sample_weight=None) -> None:
        """Adds one batch's `LocalLoss` to the trackers."""
        self.loss.update_state(local_loss.loss)
        for term, tracker in self.terms.items():
            tracker.update_state(local_loss.terms[term])
        for metric in self.block_metrics + self.network_metrics:
            metric.update_state(
                y, local_loss.predictions, sample_weight=sample_weight
            )

    def results(self) -> dict:
        """`{name: value}` of every tracker."""
        return {
            metric.name: metric.result()
            for metric in self.network_metrics
            + self.losses
            + self.block_metrics
        }


def _is_sparse_loss(loss):
    name = getattr(loss, "name", None) or getattr(loss, "__name__", "")
    return "sparse" in name


def _metric_copy(metric, prefix, sparse):
    if isinstance(metric, str):
        if metric in ("accuracy", "acc"):
            cls = (
                keras.metrics.SparseCategoricalAccuracy
                if sparse
                else keras.metrics.CategoricalAccuracy
            )
            return cls(name=prefix + "accuracy")
        metric = keras.metrics.get(metric)
    if isinstance(metric, keras.metrics.Metric):
        config = dict(metric.get_config(), name=prefix + metric.name)
        return metric.__class__.from_config(config)
    return keras.metrics.MeanMetricWrapper(
        metric, name=prefix + metric.__name__
    )
