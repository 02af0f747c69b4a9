"""AssociatedModel: Associated Learning over a localgrad.Network's blocks."""

from collections.abc import Sequence

import keras

from localgrad.associated import components
from localgrad.associated.objective import AssociatedObjective
from localgrad.associated.optimizer import ComponentOptimizer, clone_optimizer
from localgrad.blocks import placement
from localgrad.blocks.block import Block
from localgrad.decoupling_file import read_decoupling
from localgrad.errors import UserError
from localgrad.greedy_model import GreedyModel
from localgrad.network import Network, config_with_network

# The compiled losses that say the labels are classes (sparse or dense).
_SPARSE_LOSSES = ("sparse_categorical_crossentropy",)
_DENSE_LOSSES = ("categorical_crossentropy",)


@keras.saving.register_keras_serializable(package="localgrad")
class AssociatedModel(GreedyModel):
    """Associated Learning (Kao & Chen, 2021) over a network's blocks.

    The network is cut into K components exactly as `GreedyModel` cuts it
    into blocks (`num_blocks`, `boundaries`, `balance`, a SEDONA
    decoupling). Component i has its units f_i (on the detached
    s_{i-1}; s_0 = x), an encoder g_i: Dense(n, sigmoid) on the detached
    label code t_{i-1} (t_0 = the one-hot label), a bridge b_i: flatten,
    Dense(5n, sigmoid), Dense(n, sigmoid) and a decoder h_i: Dense(n,
    sigmoid) (h_1: Dense(classes, sigmoid)). Its associated loss
    MSE(b_i(s_i), sg(t_i)) trains f_i and b_i, its autoencoder loss
    MSE(h_i(t_i), sg(t_{i-1})) trains g_i and h_i, with their own
    optimizers, the label side's at `decoder_learning_rate_factor` times
    the rate. Every component trains on every batch; the label-side
    stream (s_i, t_i) is handed from block to block like the features, so
    the synchronous and pipelined executors and `devices=` run it as
    they run a `GreedyModel`.

    `call` (and `predict`) is h_1(…h_K(b_K(s_K))): class scores in (0, 1),
    from the effective parameters (all f_i, b_K, all h_i); the network's
    own classifier and the encoders are not used at inference.
    `shortcut(x, k)` predicts at depth k through b_k.

    Example:

    ```python
    net = localgrad.models.build("vgg11", (28, 28, 1), 10, width=0.5)
    model = localgrad.AssociatedModel(net, num_blocks=4, label_width=300)
    model.compile(optimizer=keras.optimizers.Adam(1e-4),
                  metrics=["accuracy"])
    model.fit(x, y, epochs=20)
    model.predict(x)                        # h_1(h_2(…h_K(b_K(s_K))))
    model.evaluate(x, y, return_dict=True)  # accuracy, block_k_accuracy,
    # block_k_associated_loss, block_k_autoencoder_loss, block_k_loss
    localgrad.export.save(model, "/tmp/al", early_exits=True)
    ```

    Logs: per block `block_k_loss` (the sum of both losses),
    `block_k_associated_loss`, `block_k_autoencoder_loss` and
    `block_k_<metric>` (the shortcut prediction at depth k); the last
    block's metrics also without prefix.

    Args:
        network: The `localgrad.Network` to train.
        num_blocks: The number of components K (or give `boundaries`).
        boundaries: The units after which a component ends.
        label_width: n, the width of the label codes t_i.
        decoder_learning_rate_factor: The label side's (g_i, h_i)
            learning rate over the compiled one (2 in the official code).
        balance: As for `GreedyModel`: None, "memory" or "compute".
        balance_batch_size: As for `GreedyModel`.
        devices: As for `GreedyModel`: component k on its device.

    Raises:
        ValueError: for a label width under 1, a block output that cannot
            be flattened, a non-positive learning-rate factor, and what
            `GreedyModel` rejects.
    """

    def __init__(
        self,
        network: Network,
        num_blocks: int | None = None,
        boundaries: Sequence[int] | None = None,
        *,
        label_width: int,
        decoder_learning_rate_factor: float = 2.0,
        balance: str | None = None,
        balance_batch_size: int = 128,
        devices: Sequence[str] | None = None,
        **kwargs,
    ):
        self.label_width = components.check_label_width(label_width)
        if not decoder_learning_rate_factor > 0:
            raise UserError(
                "decoder_learning_rate_factor must be > 0; got "
                f"{decoder_learning_rate_factor!r} (the official code's "
                "is 2.0)."
            )
        self.decoder_learning_rate_factor = float(decoder_learning_rate_factor)
        super().__init__(
            network,
            num_blocks=num_blocks,
            boundaries=boundaries,
            heads=None,
            balance=balance,
            balance_batch_size=balance_batch_size,
            devices=devices,
            **kwargs,
        )

    def _build_blocks(self, heads, devices) -> list:
        """The components: units, then g_i, b_i, h_i on the block's device."""
        network, width = self.network, self.label_width
        classes = network.num_classes
        self.heads = []
        self.encoders, self.bridges, self.decoders = [], [], []
        blocks = []
        for k, (start, end) in enumerate(self.block_ranges):
            previous = classes if k == 0 else width
            self.encoders.append(components.build_encoder(k, previous, width))
            self.decoders.append(components.build_decoder(k, width, previous))
            self.bridges.append(
                components.build_bridge(
                    k, network.unit_output_shapes[end - 1], width
                )
            )
            for layer in (self.encoders[k], self.decoders[k]):
                placement.move_variables(layer.variables, devices[k])
            blocks.append(
                Block(
                    k,
                    network.units[start:end],
                    (start, end),
                    self.bridges[k],
                    devices[k],
                )
            )
        return blocks

    @classmethod
    def from_decoupling(
        cls, network: Network, path: str, num_blocks: int, **kwargs
    ) -> "AssociatedModel":
        """An AssociatedModel cut at a SEDONA decoupling's K-block boundaries.

        The decoupling's heads are not used: every component ends in a
        bridge.

        Example:

        ```python
        model = localgrad.AssociatedModel.from_decoupling(
            net, "/tmp/search/decoupling.json", num_blocks=4, label_width=300)
        ```
        """
        boundaries, _ = read_decoupling(path, network).decoupling(num_blocks)
        return cls(network, boundaries=boundaries, **kwargs)

    @GreedyModel.trained_blocks.setter
    def trained_blocks(self, blocks):
        if blocks is not None and sorted(set(blocks)) != list(
            range(self.num_blocks)
        ):
            raise UserError(
                f"trained_blocks={list(blocks)}: Associated Learning trains "
                "every component on every batch (the label-side stream "
                "needs each one). Use the parallel schedule."
            )
        GreedyModel.trained_blocks.fset(self, blocks)

    def call(self, inputs, training=None):
        features = self.network.call_units(
            inputs, 0, self.network.num_units, training
        )
        return self._decode(self.num_blocks - 1, features, training)

    def shortcut(self, inputs, depth: int, training=False):
        """The prediction at depth k: f_1..f_k, b_k, h_k..h_1.

        Example:

        ```python
        model.shortcut(x, 1)  # class scores through blocks 0, 1 and b_1
        ```

        Args:
            inputs: A batch of inputs.
            depth: The block index k (0-based) in 0..K-1.

        Raises:
            ValueError: for a depth outside 0..K-1.
        """
        if not 0 <= depth < self.num_blocks:
            raise UserError(
                f"depth={depth} is not a block of this {self.num_blocks}-"
                f"block model; use 0..{self.num_blocks - 1}."
            )
        end = self.block_ranges[depth][1]
        features = self.network.call_units(inputs, 0, end, training)
        return self._decode(depth, features, training)

    def head_outputs(self, inputs, training=False) -> list:
        """The shortcut class scores at every depth (the last: `call`).

        Example:

        ```python
        scores = model.head_outputs(x)  # K tensors of shape (B, classes)
        ```
        """
        outputs, features = [], inputs
        for depth, (start, end) in enumerate(self.block_ranges):
            with self.blocks[depth].device_scope():
                features = self.network.call_units(
                    features, start, end, training
                )
                outputs.append(self._decode(depth, features, training))
        return outputs

    def _decode(self, depth, features, training):
        codes = self.bridges[depth](features, training=training)
        return components.decode(self.decoders[: depth + 1], codes, training)

    def compile(
        self,
        optimizer="adam",
        loss="sparse_categorical_crossentropy",
        metrics=None,
        **kwargs,
    ):
        """Configures training; see `keras.Model.compile`.

        Every component gets two clones of `optimizer`: one for f_i and
        b_i, one for g_i and h_i at `decoder_learning_rate_factor` times
        the learning rate. The components learn from their own MSE losses;
        `loss` only says what the labels are: a sparse categorical
        cross-entropy for class indices (the default), a categorical one
        for one-hot (or smoothed) rows.

        Raises:
            ValueError: for a loss that is not a classification loss, or
                a loss-scaled (mixed_float16) optimizer.
        """
        _check_classification_loss(loss)
        super().compile(
            optimizer=optimizer, loss=loss, metrics=metrics, **kwargs
        )
        if isinstance(self.optimizer, keras.optimizers.LossScaleOptimizer):
            raise UserError(
                "AssociatedModel does not support loss scaling "
                "(mixed_float16); use float32 or mixed_bfloat16."
            )
        # Keras' saving walks attributes: list the Keras optimizers.
        self._block_optimizers = [
            part for block in self.blocks for part in block.optimizer.optimizers
        ]

    def _block_objective(self, block) -> AssociatedObjective:
        k = block.index
        return AssociatedObjective(
            self.encoders[k],
            self.bridges[k],
            self.decoders[: k + 1],
            self.network.num_classes,
            sparse_labels=_loss_name(self._compiled.loss) in _SPARSE_LOSSES,
        )

    def _block_optimizer(self, block) -> ComponentOptimizer:
        k = block.index
        label_side = (
            self.encoders[k].trainable_variables
            + self.decoders[k].trainable_variables
        )
        return ComponentOptimizer(
            clone_optimizer(self.optimizer),
            clone_optimizer(self.optimizer, self.decoder_learning_rate_factor),
            label_side,
            self.decoder_learning_rate_factor,
        )

    def get_config(self):
        config = super(GreedyModel, self).get_config()
        config.update(
            network=keras.saving.serialize_keras_object(self.network),
            boundaries=self.boundaries,
            label_width=self.label_width,
            decoder_learning_rate_factor=self.decoder_learning_rate_factor,
            precise_batch_norm=self.precise_batch_norm,
        )
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**config_with_network(config))


def _loss_name(loss) -> str:
    if isinstance(loss, str):
        return loss
    loss = keras.losses.get(loss)
    name = getattr(loss, "fn", loss)
    return getattr(name, "__name__", type(loss).__name__)


def _check_classification_loss(loss):
    name = _loss_name(loss) if loss is not None else None
    if name not in _SPARSE_LOSSES + _DENSE_LOSSES:
        raise UserError(
            f"AssociatedModel.compile got loss={loss!r}, which is not a "
            "classification loss. Associated Learning learns from its own "
            "associated and autoencoder losses; `loss` only says what the "
            "labels are: 'sparse_categorical_crossentropy' (class indices, "
            "the default) or 'categorical_crossentropy' (one-hot rows)."
        )
