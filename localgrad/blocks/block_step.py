"""One block's training and forward step, as per-replica functions.

A block's training step: forward through its units and objective under a
tape, gradients of its local loss over its own variables, its optimizer's
update, then its trackers' and its objective's update (the Uzawa
multiplier of a transport objective); it returns its output hand-over,
detached.
Executors decide how these steps are compiled and dispatched: one
execution per block, one after the other (synchronous) or all at once from
one thread per block (pipelined). Everything a step creates or runs is on
the block's device.
"""

import functools

import tensorflow as tf

from localgrad.blocks.block import Block
from localgrad.blocks.hand_over import HandOver


def train_step(block: Block, jit_compile: bool = False):
    """The per-replica training step of `block`.

    Example:

    ```python
    step = train_step(model.blocks[0])
    hand_over = step(HandOver(x), y, None)  # trains block 0 on (x, y)
    ```

    Args:
        block: A compiled `Block`.
        jit_compile: Compile the gradient computation with XLA (the update
            and the metrics stay outside it, where a strategy all-reduces).

    Returns:
        A function `(inputs, y, sample_weight) -> HandOver`.
    """
    optimizer = block.optimizer

    def compute(inputs, y, sample_weight):
        replicas = tf.distribute.get_replica_context()
        num_replicas = replicas.num_replicas_in_sync if replicas else 1
        variables = block.trainable_variables
        with tf.GradientTape() as tape:
            outputs, local = block.local_loss(
                inputs.detached(), y, sample_weight, training=True
            )
            scaled_loss = optimizer.scale_loss(local.loss / num_replicas)
        return outputs, local, tape.gradient(scaled_loss, variables)

    if jit_compile:
        compute = tf.function(compute, jit_compile=True)

    def step(inputs: HandOver, y, sample_weight) -> HandOver:
        with block.device_scope():
            outputs, local, gradients = compute(inputs, y, sample_weight)
            optimizer.apply_gradients(zip(gradients, block.trainable_variables))
            block.update_state(local, y, sample_weight, training=True)
            return outputs.detached()

    return step


def forward_step(block: Block, jit_compile: bool = False):
    """The per-replica inference-mode forward of a frozen `block`.

    Returns:
        A function `(inputs) -> HandOver`.
    """

    def forward(inputs):
        return block.call_units(inputs, training=False)

    if jit_compile:
        forward = tf.function(forward, jit_compile=True)

    def step(inputs: HandOver) -> HandOver:
        with block.device_scope():
            return forward(inputs)

    return step


def on_replicas(strategy: tf.distribute.Strategy, replica_fn, eager: bool):
    """`replica_fn` run by `strategy` on every replica, compiled unless eager.

    Each call gives a new function (a partial, not a shared closure:
    TensorFlow counts traces per code object, and K blocks' first traces
    are not the "frequent retracing" it warns about).
    """
    run = functools.partial(_run_on_replicas, strategy, replica_fn)
    if eager:
        return run
    return tf.function(run, reduce_retracing=True)


def _run_on_replicas(strategy, replica_fn, *args):
    return strategy.run(replica_fn, args=args)
