"""BlockTransport: one block's transport regularization during training.

Made by `localgrad.Transport.for_block(k, K)`: a Keras layer that owns λ_k
(a non-trainable variable, so checkpoints and `save_weights` hold it),
runs the block with its transport term, adds the weighted term to a local
loss, performs the Uzawa update and tracks the term for the logs.
"""

import math

import keras

from localgrad.transport_term import run_block_with_transport


@keras.saving.register_keras_serializable(package="localgrad")
class BlockTransport(keras.layers.Layer):
    """One block's transport regularization: weight, λ_k and term tracker.

    Made by `Transport.for_block`. With Uzawa it owns two non-trainable
    variables, `multiplier` (λ_k, float32) and `uzawa_steps` (the block's
    training steps so far, int64), so a model holding the layer saves and
    restores them with its weights. `term_tracker` is the mean of the
    terms of the batches since the last reset (log `block_k_transport`).

    Example:

    ```python
    transport = localgrad.Transport(uzawa_step=1.0, uzawa_every=2)
    block = transport.for_block(0, num_blocks=2)
    outputs, term = block.run(units, tf.stop_gradient(features), True)
    loss = block.regularized_loss(cross_entropy, term)  # ce + term / λ_0
    block.update_multiplier(cross_entropy)  # after the optimizer step
    block.update_state(term)
    block.logs()  # {"block_0_transport": ..., "block_0_uzawa_lambda": 1.0}
    ```

    Args:
        transport: The `localgrad.Transport` settings (or their config).
        block: k, the block's index.
        num_blocks: K.
        **kwargs: Passed to `keras.layers.Layer` (default name
            `block_<k>_transport`).
    """

    def __init__(self, transport, block: int, num_blocks: int, **kwargs):
        kwargs.setdefault("name", f"block_{block}_transport")
        super().__init__(**kwargs)
        if isinstance(transport, dict):
            transport = keras.saving.deserialize_keras_object(transport)
        self.transport = transport
        self.block = block
        self.num_blocks = num_blocks
        self.multiplier = None
        self.uzawa_steps = None
        if transport.adaptive:
            self.tau = None
            self.multiplier = self.add_weight(
                shape=(),
                initializer=keras.initializers.Constant(
                    transport.initial_multiplier(block, num_blocks)
                ),
                trainable=False,
                aggregation="mean",
                name="uzawa_lambda",
            )
            self.uzawa_steps = self.add_weight(
                shape=(),
                dtype="int64",
                initializer="zeros",
                trainable=False,
                aggregation="only_first_replica",
                name="uzawa_steps",
            )
        else:
            self.tau = transport.block_tau(block, num_blocks)
        self.term_tracker = keras.metrics.Mean(name=f"block_{block}_transport")
        self.built = True

    @property
    def active(self) -> bool:
        """False when τ = ∞: the block has no term (and none is computed)."""
        return self.transport.adaptive or not math.isinf(self.tau)

    def run(self, units, inputs, training=None) -> tuple:
        """Runs the block's units; returns `(outputs, term)`.

        The term is `run_block_with_transport`'s, or 0 when the block has
        no term (τ = ∞; the units then run as usual).
        """
        if not self.active:
            outputs = inputs
            for unit in units:
                outputs = unit(outputs, training=training)
            return outputs, keras.ops.zeros((), "float32")
        return run_block_with_transport(
            units,
            inputs,
            training=training,
            transport_fn=self.transport.transport_fn,
            block_name=f"block {self.block}",
        )

    def weight(self):
        """The factor of the term: 1/(2τ_k), 0 for τ = ∞, or 1/λ_k."""
        if self.transport.adaptive:
            return 1.0 / self.multiplier.value
        return 0.0 if math.isinf(self.tau) else 1.0 / (2.0 * self.tau)

    def regularized_loss(self, local_loss, term):
        """`local_loss + weight · term`; `local_loss` itself when inactive."""
        if not self.active:
            return local_loss
        return local_loss + keras.ops.cast(self.weight() * term, "float32")

    def update_multiplier(self, local_loss) -> None:
        """Counts one training step; every `uzawa_every`-th, raises λ_k.

        `λ_k ← λ_k + uzawa_step · local_loss`. Does nothing for a fixed τ.
        Call it after the step that computed `local_loss` (the loss
        without the term).
        """
        if not self.transport.adaptive:
            return
        self.uzawa_steps.assign_add(1)
        due = keras.ops.equal(
            keras.ops.mod(self.uzawa_steps.value, self.transport.uzawa_every),
            0,
        )
        raised = self.multiplier.value + self.transport.uzawa_step * (
            keras.ops.cast(local_loss, "float32")
        )
        self.multiplier.assign(
            keras.ops.where(due, raised, self.multiplier.value)
        )

    def update_state(self, term) -> None:
        """Adds one batch's term to `term_tracker`."""
        self.term_tracker.update_state(term)

    def logs(self) -> dict:
        """`block_k_transport` and, with Uzawa, `block_k_uzawa_lambda`."""
        logs = {self.term_tracker.name: self.term_tracker.result()}
        if self.multiplier is not None:
            name = f"block_{self.block}_uzawa_lambda"
            logs[name] = self.multiplier.value
        return logs

    def get_config(self):
        config = super().get_config()
        config.update(
            transport=keras.saving.serialize_keras_object(self.transport),
            block=self.block,
            num_blocks=self.num_blocks,
        )
        return config
