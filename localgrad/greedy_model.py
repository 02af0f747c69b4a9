"""GreedyModel: a network trained block by block from local losses."""

import itertools
from collections.abc import Callable, Sequence

import keras
import tensorflow as tf

from localgrad import boundaries as boundaries_lib
from localgrad import heads as heads_lib
from localgrad.block_steps import BlockSteps
from localgrad.network import Network

HeadSpec = str | keras.layers.Layer | Callable[..., keras.layers.Layer]


@keras.saving.register_keras_serializable(package="localgrad")
class GreedyModel(keras.Model):
    """Groups a network's units into gradient-isolated blocks.

    Each block's input is the detached output of the block before it; each
    non-last block ends in an auxiliary head, the last in the network's own
    classifier; each block learns from its own local loss with its own clone
    of the compiled optimizer. `call` (and so `predict`) is the network
    alone: no head runs at inference. `num_blocks=1` is end-to-end backprop.

    Example:

    ```python
    net = localgrad.models.build("vgg19", (32, 32, 3), 10, width=0.25)
    model = localgrad.GreedyModel(net, num_blocks=4, heads="mlp_sr")
    model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9),
                  loss=keras.losses.SparseCategoricalCrossentropy(
                      from_logits=True),
                  metrics=["accuracy"])
    model.fit(x, y, epochs=3)
    model.evaluate(x, y, return_dict=True)  # accuracy, block_k_accuracy, ...
    ```

    Logs: `block_k_loss` and one `block_k_<metric>` per compiled metric for
    every block that ran (the last block's are the network's own, also
    reported without prefix), and `loss`, the sum of the local losses of the
    blocks that ran: the objective the step minimised.

    Args:
        network: The `localgrad.Network` to train.
        num_blocks: The number of blocks K (give this or `boundaries`).
        boundaries: The units after which a block ends (1..L-1, increasing).
        heads: The auxiliary heads: a head name (see `localgrad.heads`), a
            Keras layer, a callable `(input_shape, num_classes) -> layer`, or
            a list of K - 1 of these, one per boundary.
        head_width: `width_mult` given to named heads.
        balance: With `num_blocks`: `None` (equal unit counts), `"memory"`
            (even training-step memory: activation bytes at
            `balance_batch_size` plus the bytes of the parameter gradients)
            or `"compute"` (even FLOPs), measured by `localgrad.profile`.
        balance_batch_size: The training batch size the memory balance is
            computed for (activations grow with it, gradients do not).

    Raises:
        ValueError: for bad boundaries, block counts, balance or heads.
    """

    def __init__(
        self,
        network: Network,
        num_blocks: int | None = None,
        boundaries: Sequence[int] | None = None,
        heads: HeadSpec | Sequence[HeadSpec] = "mlp_sr",
        head_width: float = 1.0,
        balance: str | None = None,
        balance_batch_size: int = 128,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.network = network
        self.boundaries = _resolve_boundaries(
            network, num_blocks, boundaries, balance, balance_batch_size
        )
        self.block_ranges = boundaries_lib.block_ranges(
            self.boundaries, network.num_units
        )
        self.head_width = head_width
        self.heads = _build_heads(network, self.boundaries, heads, head_width)
        self._trained_blocks = None
        self._training = None
        self.built = True

    @classmethod
    def from_decoupling(
        cls, network: Network, path: str, num_blocks: int, **kwargs
    ) -> "GreedyModel":
        """A GreedyModel with the K-block decoupling a SEDONA search found.

        Example:

        ```python
        model = localgrad.GreedyModel.from_decoupling(
            net, "/tmp/search/decoupling.json", num_blocks=4)
        ```

        Args:
            network: The network the search ran on (same architecture and
                units; checked against the file).
            path: A `decoupling.json` written by `localgrad.search`.
            num_blocks: K.
            **kwargs: Passed to `GreedyModel`. `head_width` defaults to
                the width the heads were searched at, when the file says.

        Raises:
            ValueError: if the file is corrupt or for another network.
        """
        from localgrad.search import read_decoupling

        found = read_decoupling(path, network)
        boundaries, heads = found.decoupling(num_blocks)
        if "head_width" in found.search:
            kwargs.setdefault("head_width", found.search["head_width"])
        return cls(network, boundaries=boundaries, heads=heads, **kwargs)

    @property
    def num_blocks(self) -> int:
        """The number of blocks K."""
        return len(self.block_ranges)

    @property
    def trained_blocks(self) -> list:
        """The blocks a training step trains (all by default).

        Blocks before the first trained block run forward only, in
        inference mode, with no tape; blocks after the last do not run.
        Schedules (`localgrad.callbacks.GreedySchedule`) set this.
        """
        if self._trained_blocks is None:
            return list(range(self.num_blocks))
        return list(self._trained_blocks)

    @trained_blocks.setter
    def trained_blocks(self, blocks):
        if blocks is not None:
            blocks = sorted(set(int(k) for k in blocks))
            if not blocks or not all(0 <= k < self.num_blocks for k in blocks):
                raise ValueError(
                    f"trained_blocks={blocks} must name at least one block "
                    f"in 0..{self.num_blocks - 1}."
                )
        self._trained_blocks = blocks

    @property
    def block_optimizers(self) -> list:
        """One optimizer per block (clones of the compiled one)."""
        self._assert_compile_called("block_optimizers")
        return self._training.optimizers

    def block_trainable_variables(self, block: int) -> list:
        """The trainable variables of a block's units and its head."""
        start, end = self.block_ranges[block]
        layers = self.network.units[start:end] + [self._block_head(block)]
        return [v for layer in layers for v in layer.trainable_variables]

    def call(self, inputs, training=None):
        return self.network(inputs, training=training)

    def head_outputs(self, inputs, training=False) -> list:
        """The logits of every block's head (the last: the classifier).

        Example:

        ```python
        logits = model.head_outputs(x)  # K tensors of shape (B, classes)
        ```
        """
        outputs, features = [], inputs
        for block, (start, end) in enumerate(self.block_ranges):
            features = self.network.call_units(features, start, end, training)
            outputs.append(self._block_head(block)(features, training=training))
        return outputs

    def evaluate_ensemble(
        self, x, y=None, num_heads: int = 2, batch_size: int | None = None
    ) -> dict:
        """Accuracy of the mean log-probabilities of the last heads.

        SEDONA's test-time ensemble: the network's classifier and the heads
        of the `num_heads - 1` blocks before it vote with the mean of their
        log-softmax outputs.

        Example:

        ```python
        model.evaluate_ensemble(x_test, y_test, num_heads=2)
        # {"accuracy": 0.91, "num_heads": 2}
        ```

        Args:
            x: Inputs, or a dataset of `(x, y)` batches.
            y: Integer labels, when `x` holds inputs.
            num_heads: How many of the last heads vote (1..K).
            batch_size: Batch size for array inputs.

        Returns:
            A dict with `accuracy` and `num_heads`.

        Raises:
            ValueError: if `num_heads` is not in 1..K.
        """
        from localgrad.ensemble import evaluate_ensemble

        return evaluate_ensemble(self, x, y, num_heads, batch_size)

    def compile(self, optimizer="rmsprop", loss=None, metrics=None, **kwargs):
        """Configures training; see `keras.Model.compile`.

        Every block gets its own clone of `optimizer` (its own iteration
        count and learning-rate schedule). Each metric is tracked for the
        network's classifier and, as `block_k_<name>`, for every block.
        """
        if loss is None:
            raise ValueError(
                "GreedyModel.compile needs a loss: every block's local loss "
                "is this loss on its head's logits."
            )
        super().compile(optimizer=optimizer, loss=loss, **kwargs)
        # Only the block optimizers hold slots; the compiled one keeps the
        # global step count and the configuration users read and log.
        self.optimizer.build([])
        self._training = _TrainingState(self, loss, metrics or [])

    def get_compile_config(self):
        if self._training is None:
            return None
        return {
            "optimizer": keras.optimizers.serialize(self.optimizer),
            "loss": keras.losses.serialize(self._training.loss),
            "metrics": [
                keras.saving.serialize_keras_object(m)
                for m in self._training.metric_specs
            ],
        }

    def compile_from_config(self, config):
        config = {
            "optimizer": keras.optimizers.deserialize(config["optimizer"]),
            "loss": keras.losses.deserialize(config["loss"]),
            "metrics": [
                keras.saving.deserialize_keras_object(m)
                for m in config["metrics"]
            ],
        }
        self.compile(**config)

    @property
    def metrics(self):
        if self._training is None:
            return []
        return self._training.all_metrics()

    def block_loss(self, block, features, y, sample_weight, training):
        """Runs one block; returns `(outputs, local loss, head logits)`."""
        start, end = self.block_ranges[block]
        outputs = self.network.call_units(features, start, end, training)
        head = self._block_head(block)
        if hasattr(head, "local_loss"):
            loss, logits = head.local_loss(
                outputs, y, sample_weight=sample_weight, training=training
            )
        else:
            logits = head(outputs, training=training)
            loss = self._training.mean_loss(y, logits, sample_weight)
        for unit in self.network.units[start:end]:
            loss += sum(unit.losses, 0.0)
        return outputs, loss, logits

    def update_block_metrics(self, block, loss, logits, y, sample_weight):
        """Adds one batch to a block's loss and metric trackers."""
        self._training.update(block, loss, logits, y, sample_weight)

    def train_step(self, data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        steps = self._training.steps()
        trained = self.trained_blocks
        features = x
        for block in range(trained[-1] + 1):
            if block in trained:
                features = steps.train(block, features, y, sample_weight)
            else:
                features = steps.forward(block, features)
        self.optimizer.iterations.assign_add(1)
        return self._training.logs(self._training.blocks_run())

    def test_step(self, data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        features = x
        for block in range(self.num_blocks):
            features, loss, logits = self.block_loss(
                block, features, y, sample_weight, training=False
            )
            self.update_block_metrics(block, loss, logits, y, sample_weight)
        return self._training.logs(range(self.num_blocks))

    def make_train_function(self, force=False):
        """Runs `train_step` eagerly; each block's step is compiled alone."""
        if self.train_function is not None and not force:
            return self.train_function

        def train_function(iterator):
            logs = None
            for data in _next_batches(iterator, self.steps_per_execution):
                logs = self.train_step(data)
            if logs is None:
                raise StopIteration
            return logs

        self.train_function = train_function
        return train_function

    def make_test_function(self, force=False):
        """Keras' test function, with XLA kept inside each replica.

        Keras compiles around `strategy.run`, which XLA cannot place across
        several devices; under a multi-device strategy the evaluation step
        runs without XLA (training keeps it, per block and per replica).
        """
        if self.distribute_strategy.num_replicas_in_sync == 1:
            return super().make_test_function(force)
        jit_compile, self._jit_compile = self._jit_compile, False
        try:
            return super().make_test_function(force)
        finally:
            self._jit_compile = jit_compile

    def get_config(self):
        config = super().get_config()
        config.update(
            network=keras.saving.serialize_keras_object(self.network),
            boundaries=self.boundaries,
            heads=[keras.saving.serialize_keras_object(h) for h in self.heads],
            head_width=self.head_width,
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["network"] = keras.saving.deserialize_keras_object(
            config["network"]
        )
        config["heads"] = [
            keras.saving.deserialize_keras_object(h) for h in config["heads"]
        ]
        return cls(**config)

    def _block_head(self, block):
        if block == self.num_blocks - 1:
            return self.network.classifier
        return self.heads[block]


class _TrainingState:
    """What `compile` adds: the loss, block optimizers, metric trackers.

    Kept out of the model's attributes so that `model.save` stores the
    network and heads, not training machinery.
    """

    def __init__(self, model, loss, metrics):
        self.model = model
        self.loss = keras.losses.get(loss)
        self.metric_specs = list(metrics)
        sparse = _is_sparse_loss(self.loss)
        with model.distribute_strategy.scope():
            self.optimizers = [
                _clone_optimizer(model.optimizer)
                for _ in range(model.num_blocks)
            ]
            for block, optimizer in enumerate(self.optimizers):
                optimizer.build(model.block_trainable_variables(block))
            self.block_losses = [
                keras.metrics.Mean(name=f"block_{k}_loss")
                for k in range(model.num_blocks)
            ]
            self.block_metrics = [
                [
                    _metric_copy(metric, f"block_{k}_", sparse)
                    for metric in metrics
                ]
                for k in range(model.num_blocks)
            ]
            self.network_metrics = [
                _metric_copy(metric, "", sparse) for metric in metrics
            ]
        self._steps = None

    def mean_loss(self, y, logits, sample_weight):
        """The compiled loss as a plain per-replica batch mean.

        Keras losses divide by the number of replicas inside a replica
        context; local losses are kept as plain means and scaled once, in
        the block step.
        """
        loss = self.loss(y, logits, sample_weight)
        replicas = tf.distribute.get_replica_context()
        if replicas is not None and replicas.num_replicas_in_sync > 1:
            loss *= replicas.num_replicas_in_sync
        return loss

    def steps(self):
        if self._steps is None:
            self._steps = BlockSteps(self.model)
        return self._steps

    def all_metrics(self):
        flat = [m for block in self.block_metrics for m in block]
        return self.network_metrics + self.block_losses + flat

    def update(self, block, loss, logits, y, sample_weight):
        self.block_losses[block].update_state(loss)
        targets = self.block_metrics[block]
        if block == self.model.num_blocks - 1:
            targets = targets + self.network_metrics
        for metric in targets:
            metric.update_state(y, logits, sample_weight=sample_weight)

    def blocks_run(self):
        """The blocks whose trackers saw a batch since the last reset."""
        return [k for k, t in enumerate(self.block_losses) if t.count > 0]

    def logs(self, ran):
        ran = list(ran)
        logs = {"loss": sum(self.block_losses[k].result() for k in ran)}
        if self.model.num_blocks - 1 in ran:
            for metric in self.network_metrics:
                logs[metric.name] = metric.result()
        for k in ran:
            logs[self.block_losses[k].name] = self.block_losses[k].result()
            for metric in self.block_metrics[k]:
                logs[metric.name] = metric.result()
        return logs


def _resolve_boundaries(
    network, num_blocks, boundaries, balance, balance_batch_size
):
    if (num_blocks is None) == (boundaries is None):
        raise ValueError(
            "Give exactly one of num_blocks (e.g. num_blocks=4) or "
            "boundaries (e.g. boundaries=[5, 12, 13])."
        )
    if boundaries is not None:
        if balance is not None:
            raise ValueError(
                "balance= chooses boundaries; it cannot be combined with "
                "explicit boundaries. Pass num_blocks with balance."
            )
        return boundaries_lib.validate_boundaries(boundaries, network.num_units)
    if balance is None:
        return boundaries_lib.uniform_boundaries(network.num_units, num_blocks)
    if balance not in ("memory", "compute"):
        raise ValueError(
            f"Unknown balance={balance!r}; use None, 'memory' or 'compute'."
        )
    from localgrad.profile import profile  # Traces the network: only here.

    profiles = profile(network, batch_size=balance_batch_size)
    if balance == "compute":
        unit_costs = [p.flops for p in profiles]
    else:
        unit_costs = [p.activation_bytes + 4 * p.params for p in profiles]
    return boundaries_lib.balanced_boundaries(unit_costs, num_blocks)


def _build_heads(network, boundaries, heads, head_width):
    if isinstance(heads, (list, tuple)):
        if len(heads) != len(boundaries):
            raise ValueError(
                f"Got {len(heads)} heads for {len(boundaries)} boundaries: "
                "give one head per non-last block, or a single head spec "
                "for all of them."
            )
        specs = list(heads)
    elif isinstance(heads, keras.layers.Layer) and len(boundaries) > 1:
        raise ValueError(
            "One head layer cannot serve several blocks; pass a list of "
            "layers, a head name, or a callable that makes a head."
        )
    else:
        specs = [heads] * len(boundaries)
    num_classes = network.num_classes
    built = []
    for boundary, spec in zip(boundaries, specs):
        shape = network.unit_output_shapes[boundary - 1]
        built.append(
            _build_head(spec, shape, num_classes, head_width, boundary)
        )
    return built


def _build_head(spec, shape, num_classes, head_width, boundary):
    where = f"the head after unit {boundary} (input shape {shape})"
    if isinstance(spec, str):
        return heads_lib.build(spec, shape, num_classes, width_mult=head_width)
    head = (
        spec
        if isinstance(spec, keras.layers.Layer)
        else spec(shape, num_classes)
    )
    try:
        output = head(keras.KerasTensor((None,) + tuple(shape)))
    except Exception as error:
        raise ValueError(
            f"{where} cannot take that feature map: {error}"
        ) from error
    if tuple(output.shape[1:]) != (num_classes,):
        raise ValueError(
            f"{where} outputs shape {tuple(output.shape[1:])}; a head must "
            f"output logits of shape ({num_classes},)."
        )
    return head


def _clone_optimizer(optimizer):
    return optimizer.__class__.from_config(optimizer.get_config())


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


def _next_batches(iterator, count):
    if isinstance(
        iterator, (tf.data.Iterator, tf.distribute.DistributedIterator)
    ):
        for _ in range(count):
            optional = iterator.get_next_as_optional()
            if not optional.has_value():
                return
            yield optional.get_value()
    else:
        yield from itertools.islice(iterator, count)
