"""Each block's training step as its own compiled execution.

A greedy step runs block 0's step, then block 1's, ... Each is a separate
`tf.function` call, so that block k's activations, gradients and update are
finished and freed before block k + 1's forward starts: the step's memory
peak is that of its largest block, not of the whole network. (Tracing every
block into one graph, even with per-block tapes and control dependencies,
lets TensorFlow keep earlier blocks' tensors alive and does not lower the
peak.) The hand-over between blocks is the block's output alone, detached.
"""

import functools

import tensorflow as tf


class BlockSteps:
    """The compiled per-block train and forward functions of a GreedyModel.

    Example:

    ```python
    steps = BlockSteps(model)
    features = x
    for k in range(model.num_blocks):
        features = steps.train(k, features, y, None)
    ```

    Args:
        model: A compiled `GreedyModel`.
    """

    def __init__(self, model):
        self._model = model
        self._strategy = model.distribute_strategy
        self._eager = bool(model.run_eagerly)
        # XLA compiles the per-replica gradient computation; the update and
        # the metrics stay outside it, where a strategy can all-reduce.
        self._jit = bool(model.jit_compile) and not self._eager
        self._train = [
            self._distributed_function(self._make_train_step(k))
            for k in range(model.num_blocks)
        ]
        self._forward = [
            self._distributed_function(self._make_forward(k))
            for k in range(model.num_blocks)
        ]

    def train(self, block, features, y, sample_weight):
        """Trains `block` on one batch; returns its detached output."""
        return self._train[block](features, y, sample_weight)

    def forward(self, block, features):
        """Runs a frozen `block` in inference mode; returns its output."""
        return self._forward[block](features)

    def _distributed_function(self, replica_fn):
        # A partial per block, not a shared closure: TensorFlow counts
        # traces per code object, and K blocks' first traces are not the
        # "frequent retracing" it warns about.
        run = functools.partial(_run_on_replicas, self._strategy, replica_fn)
        if self._eager:
            return run
        return tf.function(run, reduce_retracing=True)

    def _make_train_step(self, block):
        model = self._model
        optimizer = model.block_optimizers[block]
        variables = model.block_trainable_variables(block)

        def compute(features, y, sample_weight):
            replicas = tf.distribute.get_replica_context()
            num_replicas = replicas.num_replicas_in_sync if replicas else 1
            with tf.GradientTape() as tape:
                outputs, loss, logits = model.block_loss(
                    block,
                    tf.stop_gradient(features),
                    y,
                    sample_weight,
                    training=True,
                )
                scaled_loss = optimizer.scale_loss(loss / num_replicas)
            gradients = tape.gradient(scaled_loss, variables)
            return outputs, loss, logits, gradients

        if self._jit:
            compute = tf.function(compute, jit_compile=True)

        def train_step(features, y, sample_weight):
            outputs, loss, logits, gradients = compute(
                features, y, sample_weight
            )
            optimizer.apply_gradients(zip(gradients, variables))
            model.update_block_metrics(block, loss, logits, y, sample_weight)
            return tf.stop_gradient(outputs)

        return train_step

    def _make_forward(self, block):
        model = self._model
        start, end = model.block_ranges[block]

        def forward(features):
            return model.network.call_units(
                features, start, end, training=False
            )

        if self._jit:
            forward = tf.function(forward, jit_compile=True)
        return forward


def _run_on_replicas(strategy, replica_fn, *args):
    return strategy.run(replica_fn, args=args)
