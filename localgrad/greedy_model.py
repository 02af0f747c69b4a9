"""GreedyModel: a network trained block by block from local losses.

This module builds the model: its blocks, heads, devices and transport
terms, its inference path and its config. What `compile` configures is in
`localgrad.greedy_compile`, which blocks a step trains and the executor
that runs them in `localgrad.greedy_execution`, and Keras' train and test
steps in `localgrad.greedy_steps`.
"""

import inspect
from collections.abc import Sequence

import keras

from localgrad import boundaries as boundaries_lib
from localgrad.blocks import placement
from localgrad.blocks.auxiliary_heads import HeadSpec, build_heads
from localgrad.blocks.block import build_blocks, run_chain
from localgrad.blocks.hand_over import HandOver
from localgrad.blocks.summary import block_summary_lines
from localgrad.blocks.transport_objective import block_transports
from localgrad.callbacks.precise_batch_norm import precise_by_default
from localgrad.decoupling_file import read_decoupling
from localgrad.errors import UserError
from localgrad.greedy_compile import GreedyCompile
from localgrad.greedy_execution import GreedyExecution
from localgrad.greedy_steps import GreedySteps
from localgrad.network import Network, config_with_network
from localgrad.transport import Transport


@keras.saving.register_keras_serializable(package="localgrad")
class GreedyModel(GreedyCompile, GreedyExecution, GreedySteps, keras.Model):
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
        precise_batch_norm: Greedy blocks change faster than Keras'
            BatchNorm moving averages follow (momentum 0.99 by default):
            `fit` re-estimates every BatchNorm's statistics on this many
            of its training batches (at most an epoch's), weights frozen,
            before each evaluation, at the end of each epoch and at the
            end (`localgrad.callbacks.PreciseBatchNorm`), so evaluation,
            prediction and export use statistics that match the weights.
            0: Keras' moving averages.

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
        precise_batch_norm: int = 50,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if isinstance(precise_batch_norm, bool) or not (
            isinstance(precise_batch_norm, int) and precise_batch_norm >= 0
        ):
            raise UserError(
                "precise_batch_norm is a number of training batches (0: "
                f"Keras' moving averages); got {precise_batch_norm!r}."
            )
        self.precise_batch_norm = precise_batch_norm
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
            raise UserError(
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

    def fit(self, *args, **kwargs):
        """Keras' `fit`, with BatchNorm statistics that match the weights.

        Takes Keras' arguments. Unless `precise_batch_norm=0`, a model
        with BatchNormalization also gets a `PreciseBatchNorm` callback
        on its own training batches (see `precise_by_default`).
        """
        arguments = inspect.signature(super().fit).bind(*args, **kwargs)
        arguments = arguments.arguments
        arguments["callbacks"] = precise_by_default(self, arguments)
        return super().fit(**arguments)

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

    def get_config(self):
        config = super().get_config()
        config.update(
            network=keras.saving.serialize_keras_object(self.network),
            boundaries=self.boundaries,
            heads=[keras.saving.serialize_keras_object(h) for h in self.heads],
            head_width=self.head_width,
            precise_batch_norm=self.precise_batch_norm,
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
