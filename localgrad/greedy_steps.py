"""GreedySteps: a GreedyModel's Keras train, test and predict steps.

The part of `GreedyModel` that `fit`, `evaluate` and `predict` call: the
training step hands a batch to the model's executor, which compiles and
runs the blocks' own steps; the test step runs every block under its
objective; Keras' test and predict functions are kept from compiling with
XLA across devices.
"""

import itertools

import keras
import tensorflow as tf

from localgrad.blocks.block import run_chain
from localgrad.blocks.hand_over import HandOver


class GreedySteps:
    """A `GreedyModel`'s `train_step`, `test_step` and step functions.

    A mixin: it reads the model's `blocks`, `optimizer`,
    `block_optimizers`, `trained_blocks`, `_compiled` and `_executor()`
    (from `GreedyCompile` and `GreedyExecution`), and Keras'
    `steps_per_execution` and `_jit_compile`.

    Example:

    ```python
    model.fit(x, y, epochs=1)               # train_step per batch
    model.evaluate(x, y, return_dict=True)  # test_step: every block's logs
    ```
    """

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
            jit_compile, self.jit_compile = self.jit_compile, False
            try:
                return make_function(force)
            finally:
                self.jit_compile = jit_compile
        return make_function(force)

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
