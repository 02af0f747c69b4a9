"""GreedyModel: a network trained block by block from local losses."""

import itertools
from collections.abc import Sequence

import keras
import tensorflow as tf
from keras.src.trainers.compile_utils import MetricsList

from localgrad import boundaries as boundaries_lib
from localgrad.blocks import placement
from localgrad.blocks.auxiliary_heads import HeadSpec, build_heads
from localgrad.blocks.block import build_blocks, run_chain
from localgrad.blocks.executors import EXECUTORS, Executor
from localgrad.blocks.hand_over import HandOver
from localgrad.blocks.objective import HeadObjective, Objective
from localgrad.blocks.summary import block_summary_lines
from localgrad.blocks.trackers import BlockTrackers
from localgrad.blocks.training_state import (
    CompileSpec,
    LearningRateFollower,
    checkpointed_variables,
    clone_optimizer,
)
from localgrad.blocks.transport_objective import (
    TransportObjective,
    block_transports,
)
from localgrad.decoupling_file import read_decoupling
from localgrad.network import Network, config_with_network
from localgrad.transport import Transport


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

    # Transport regularization (Karkar et al.): each block's local loss
    # plus term / (2τ), τ halved for the first half of the blocks.
    model = localgrad.GreedyModel(net, num_blocks=8, heads="cnn1",
        transport=localgrad.Transport(tau=1.0, varying=True))

    # Block k on device k, all blocks at once on one-step buffers:
    model = localgrad.GreedyModel(net, num_blocks=2,
                                  devices=["/gpu:0", "/gpu:1"])
    model.compile(...)
    model.fit(x, y, epochs=3, callbacks=[
        localgrad.callbacks.GreedySchedule("pipelined")])
    ```

    The blocks are `model.blocks` (`localgrad.blocks.Block`: units, head,
    device, and after `compile` objective, optimizer and trackers); an
    executor runs them for a step (`execution`: synchronous by default,
    pipelined with `GreedySchedule("pipelined")`, asynchronous through
    replay buffers with `GreedySchedule("async")`: simulated, or one
    thread per block when the blocks are on several devices).

    Logs: `block_k_loss` and one `block_k_<metric>` per compiled metric for
    every block that ran (the last block's are the network's own, also
    reported without prefix), and `loss`, the sum of the local losses of the
    blocks that ran: the objective the step minimised. With `transport`,
    each block's local loss includes its weighted transport term, and the
    logs add `block_k_transport` (the mean term over the epoch's batches)
    and, with the Uzawa multiplier, `block_k_uzawa_lambda` (λ_k now).

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
        devices: Device names to place the blocks on (e.g.
            `["/gpu:0", "/gpu:1"]`, or `/job:worker/...` names of a
            connected cluster). Block k's variables, optimizer slots,
            trackers and steps live on its device; only detached block
            outputs cross devices. With fewer devices than blocks,
            consecutive blocks share one; extra devices stay idle. The
            placement is not saved with the model. None: default placement.
        transport: A `localgrad.Transport`: every block's objective adds
            its transport term (`localgrad.blocks.TransportObjective`);
            the blocks' λ_k are non-trainable weights of the model, so
            saving and checkpoints keep them. None: no term.

    Raises:
        ValueError: for bad boundaries, block counts, balance or heads, a
            device that does not exist, devices under a multi-device
            distribution strategy, a `transport` that is not a
            `localgrad.Transport`, or a block whose transport term is
            undefined (see `Transport.check_blocks`).
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
        devices: Sequence[str] | None = None,
        transport: Transport | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.network = network
        self.boundaries = boundaries_lib.resolve_boundaries(
            network, num_blocks, boundaries, balance, balance_batch_size
        )
        self.block_ranges = boundaries_lib.block_ranges(
            self.boundaries, network.num_units
        )
        self.head_width = head_width
        block_devices = placement.assign_devices(
            devices, len(self.block_ranges)
        )
        if devices and self.distribute_strategy.num_replicas_in_sync > 1:
            raise ValueError(
                "devices= places blocks on devices; a multi-device "
                "distribution strategy places replicas. Use one of them: "
                "build the model outside the strategy's scope, or drop "
                "devices=."
            )
        self.blocks = self._build_blocks(heads, block_devices)
        for block in self.blocks:
            placement.move_variables(block.variables, block.device)
        self.transport = transport
        self.block_transports = block_transports(
            transport, network, self.blocks
        )
        self._trained_blocks = None
        self._execution = "synchronous"
        self._executors = {}
        self._compiled = None
        self.built = True

    def _build_blocks(self, heads, devices) -> list:
        """The blocks: the units between boundaries, each with its head.

        Sets `self.heads`. Subclasses that end blocks differently
        (`AssociatedModel`) override this.
        """
        self.heads = build_heads(
            self.network, self.boundaries, heads, self.head_width
        )
        return build_blocks(self.network, self.boundaries, self.heads, devices)

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
        found = read_decoupling(path, network)
        boundaries, heads = found.decoupling(num_blocks)
        if "head_width" in found.search:
            kwargs.setdefault("head_width", found.search["head_width"])
        return cls(network, boundaries=boundaries, heads=heads, **kwargs)

    @property
    def num_blocks(self) -> int:
        """The number of blocks K."""
        return len(self.blocks)

    @property
    def devices(self) -> list:
        """The device of every block (None: the default placement)."""
        return [block.device for block in self.blocks]

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
            if self._execution == "pipelined" and len(blocks) < len(
                self.blocks
            ):
                raise ValueError(
                    f"trained_blocks={blocks}, but the model trains "
                    "pipelined, where every block trains at every step: a "
                    "sequential or multi-lap schedule cannot be pipelined. "
                    "Use GreedySchedule('pipelined') alone, or the other "
                    "schedule without it."
                )
        self._trained_blocks = blocks

    @property
    def execution(self) -> str:
        """How a training step runs the blocks: an executor's name.

        `"synchronous"` (default): block k finishes before block k + 1
        starts, each block's step its own execution (the memory-saving
        path). `"pipelined"`: all blocks at every step, block k on what
        block k - 1 produced at the step before, each on its device; set
        by `GreedySchedule("pipelined")`, which also drains the pipeline at
        the end of every epoch (`finish_epoch`). `"async"`: asynchronous
        DGL, blocks at their own pace through replay buffers; set by
        `GreedySchedule("async")`, which gives an `AsyncExecutor` (or a
        `ThreadedExecutor`) with its settings: the setter also takes an
        `Executor` built on `model.blocks`. Setting it finishes what is in
        flight first.
        """
        return self._execution

    @execution.setter
    def execution(self, name):
        executor = None
        if isinstance(name, Executor):
            executor, name = name, name.name
        if name not in EXECUTORS:
            raise ValueError(
                f"Unknown execution {name!r}; use one of {sorted(EXECUTORS)}."
            )
        if name == "pipelined" and len(self.trained_blocks) < self.num_blocks:
            raise ValueError(
                f"Cannot train pipelined while trained_blocks="
                f"{self.trained_blocks}: pipelining trains every block at "
                "every step. Drop the sequential or multi-lap schedule."
            )
        if (
            name == "pipelined"
            and self.distribute_strategy.num_replicas_in_sync > 1
        ):
            raise ValueError(
                "Pipelined training runs the blocks' all-reduces "
                "concurrently, which a multi-device strategy cannot order; "
                "train with MirroredStrategy synchronously (no "
                "GreedySchedule('pipelined')), or pipeline with devices= "
                "outside a strategy."
            )
        self.finish_epoch()
        self._execution = name
        if executor is not None:
            self._executors[name] = executor

    @property
    def in_flight(self) -> bool:
        """Whether batches wait in the pipeline for some blocks."""
        return any(e.in_flight for e in self._executors.values())

    def finish_epoch(self) -> None:
        """Trains every block on the batches still in flight (pipelined).

        `GreedySchedule("pipelined")` calls this at the end of every epoch;
        the training function also calls it when the data run out, and
        evaluation does before it starts. A no-op when nothing is in
        flight.
        """
        for executor in self._executors.values():
            executor.finish_epoch()

    @property
    def block_optimizers(self) -> list:
        """One optimizer per block (clones of the compiled one)."""
        self._assert_compile_called("block_optimizers")
        return [block.optimizer for block in self.blocks]

    def block_trainable_variables(self, block: int) -> list:
        """The trainable variables of a block's units and its head."""
        return self.blocks[block].trainable_variables

    def call(self, inputs, training=None):
        return self.network(inputs, training=training)

    def head_outputs(self, inputs, training=False) -> list:
        """The logits of every block's head (the last: the classifier).

        Example:

        ```python
        logits = model.head_outputs(x)  # K tensors of shape (B, classes)
        ```
        """
        outputs = []

        def step(block, hand_over):
            with block.device_scope():
                hand_over = block.call_units(hand_over, training)
                outputs.append(
                    block.head(hand_over.features, training=training)
                )
            return hand_over

        run_chain(self.blocks, HandOver(inputs), step)
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
        count and learning-rate schedule), built on the block's device, and
        the objective `HeadObjective(head, loss)` (inside a
        `TransportObjective` with `transport=`). Each metric is tracked
        for the network's classifier and, as `block_k_<name>`, for every
        block. The block optimizers are tracked with the model: saving
        (`save`, `save_weights`, `tf.train.Checkpoint`,
        `keras.callbacks.BackupAndRestore`) stores their state.
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
        self.finish_epoch()
        self._compiled = CompileSpec(
            keras.losses.get(loss),
            list(metrics or []),
            learning_rate=LearningRateFollower(self.optimizer),
        )
        with self.distribute_strategy.scope():
            for block in self.blocks:
                with block.device_scope():
                    objective = self._block_objective(block)
                    trackers = BlockTrackers.create(
                        block.index,
                        self._compiled.metrics,
                        self._compiled.loss,
                        network=block.index == self.num_blocks - 1,
                        terms=objective.loss_terms,
                    )
                    block.compile(
                        objective, self._block_optimizer(block), trackers
                    )
        trackers = [block.trackers for block in self.blocks]
        self._compiled.trackers = (
            [m for t in trackers for m in t.network_metrics]
            + [m for t in trackers for m in t.losses]
            + [m for t in trackers for m in t.block_metrics]
            + [m for block in self.blocks for m in block.objective.metrics]
        )
        # Keras' monitoring callbacks (EarlyStopping, ModelCheckpoint,
        # ReduceLROnPlateau) in mode "auto" read whether a metric is
        # maximised from metrics inside Keras' compile containers only;
        # this container (the same metrics again) lets them find ours.
        self._compiled.directions = MetricsList(
            list(self._compiled.trackers), name="block_metric_directions"
        )
        self._executors = {}
        # Keras' saving walks attributes: the list stores the optimizers'
        # variables with the weights. tf.train.Checkpoint follows
        # TensorFlow trackables only: the module lists every variable.
        self._block_optimizers = self.block_optimizers
        self._checkpointed = checkpointed_variables(
            self.weights, [self.optimizer] + self.block_optimizers
        )

    def _block_objective(self, block) -> Objective:
        """Block k's objective: its head's loss, plus its transport term."""
        objective = HeadObjective(block.head, self._compiled.loss)
        if self.block_transports:
            objective = TransportObjective(
                objective, self.block_transports[block.index]
            )
        return objective

    def _block_optimizer(self, block) -> keras.optimizers.Optimizer:
        """Block k's optimizer: a clone of the compiled one."""
        return clone_optimizer(self.optimizer)

    def get_compile_config(self):
        if self._compiled is None:
            return None
        return {
            "optimizer": keras.optimizers.serialize(self.optimizer),
            "loss": keras.losses.serialize(self._compiled.loss),
            "metrics": [
                keras.saving.serialize_keras_object(m)
                for m in self._compiled.metrics
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
        if self._compiled is None:
            return []
        return self._compiled.trackers + [self._compiled.directions]

    def summary(self, print_fn=None, **kwargs):
        """Keras' summary of the layers, then one line per block.

        The block table gives each block's units (1-based range and
        names), head (the last block's is the network's classifier),
        device and parameter counts of its units and head.

        Example:

        ```python
        model.summary()
        # ... Keras' table ...
        # block  units                  head        device  unit params ...
        # 0      1-2 (unit_0..unit_1)   linear      -       352         ...
        ```

        Args:
            print_fn: Called with each line (default: `print`).
            **kwargs: Passed to `keras.Model.summary`.
        """
        super().summary(print_fn=print_fn, **kwargs)
        for line in block_summary_lines(self.blocks, self.network.unit_names):
            (print_fn or print)(line)

    def get_metrics_result(self):
        """The logs of the blocks that ran since the metrics were reset."""
        logs = self._logs([b for b in self.blocks if b.trackers.ran])
        return {
            name: keras.ops.convert_to_numpy(value).item()
            for name, value in logs.items()
        }

    def train_step(self, data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        self._compiled.learning_rate.follow(
            self.optimizer, self.block_optimizers
        )
        self._executor().train(x, y, sample_weight, self.trained_blocks)
        self.optimizer.iterations.assign_add(1)
        return self._logs([b for b in self.blocks if b.trackers.ran])

    def test_step(self, data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)

        def step(block, hand_over):
            with block.device_scope():
                outputs, local = block.local_loss(
                    hand_over, y, sample_weight, training=False
                )
                block.update_state(local, y, sample_weight, training=False)
            return outputs

        run_chain(self.blocks, HandOver(x), step)
        return self._logs(self.blocks)

    def make_train_function(self, force=False):
        """Runs `train_step` eagerly; the executor compiles the blocks."""
        if self.train_function is not None and not force:
            return self.train_function

        def train_function(iterator):
            logs, count = None, 0
            for data in _next_batches(iterator, self.steps_per_execution):
                logs = self.train_step(data)
                count += 1
            if count < self.steps_per_execution and self.in_flight:
                self.finish_epoch()  # The data ran out: drain the pipeline.
                if logs is not None:
                    logs = self._logs(self.blocks)
            if logs is None:
                raise StopIteration
            return logs

        self.train_function = train_function
        return train_function

    def make_test_function(self, force=False):
        """Keras' test function, with XLA kept inside each device.

        Batches in flight in a pipeline are trained on first. Keras
        compiles the whole step with XLA, which cannot span several devices
        (the replicas of a strategy, or blocks placed on devices): there,
        evaluation runs without XLA (training keeps it, per block).
        """
        self.finish_epoch()
        return self._without_cross_device_jit(super().make_test_function, force)

    def make_predict_function(self, force=False):
        """Keras' predict function, without XLA across devices."""
        return self._without_cross_device_jit(
            super().make_predict_function, force
        )

    def _without_cross_device_jit(self, make_function, force):
        several = len(set(self.devices)) > 1
        if self.distribute_strategy.num_replicas_in_sync > 1 or several:
            jit_compile, self._jit_compile = self._jit_compile, False
            try:
                return make_function(force)
            finally:
                self._jit_compile = jit_compile
        return make_function(force)

    def get_config(self):
        config = super().get_config()
        config.update(
            network=keras.saving.serialize_keras_object(self.network),
            boundaries=self.boundaries,
            heads=[keras.saving.serialize_keras_object(h) for h in self.heads],
            head_width=self.head_width,
            transport=None
            if self.transport is None
            else keras.saving.serialize_keras_object(self.transport),
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = config_with_network(config)
        config["heads"] = [
            keras.saving.deserialize_keras_object(h) for h in config["heads"]
        ]
        if config.get("transport") is not None:
            config["transport"] = keras.saving.deserialize_keras_object(
                config["transport"]
            )
        return cls(**config)

    def _executor(self):
        if self._execution not in self._executors:
            self._executors[self._execution] = EXECUTORS[self._execution](
                self.blocks,
                self.distribute_strategy,
                eager=bool(self.run_eagerly),
                jit_compile=bool(self.jit_compile),
            )
        return self._executors[self._execution]

    def _logs(self, blocks):
        blocks = list(blocks)
        logs = {"loss": sum(b.trackers.loss.result() for b in blocks)}
        for block in blocks:
            logs.update(block.logs())
        return logs


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
