"""BlockSummaries: per-block learning rates and throughput for TensorBoard."""

import os
import time

import keras
import tensorflow as tf

from localgrad.errors import UserError


class BlockSummaries(keras.callbacks.Callback):
    """Writes what Keras' TensorBoard callback does not, once per epoch.

    Scalars, written to `log_dir/train` at step = epoch (as Keras' own
    `epoch_*` scalars are, so they line up in TensorBoard):

    - `epoch_block_<k>_learning_rate`: the learning rate of block k's
      optimizer at the end of the epoch (blocks have their own optimizers
      and, under a sequential schedule, their own step counts);
    - `epoch_examples_per_second`: training examples per second of the
      epoch's training part (validation excluded).

    `examples_per_second` is also added to the epoch's logs, so that the
    `History` and later callbacks see it. Put this callback after Keras'
    `TensorBoard` callback, which would otherwise write it a second time.

    Example:

    ```python
    model.fit(data, epochs=10, callbacks=[
        keras.callbacks.TensorBoard("/tmp/run/tensorboard"),
        localgrad.callbacks.BlockSummaries("/tmp/run/tensorboard",
                                           examples_per_epoch=60000)])
    ```

    Args:
        log_dir: The TensorBoard directory (the one given to Keras'
            `TensorBoard` callback).
        examples_per_epoch: Training examples in one epoch.

    Raises:
        ValueError: if `examples_per_epoch` is not positive.
    """

    def __init__(self, log_dir: str, examples_per_epoch: int):
        super().__init__()
        if examples_per_epoch <= 0:
            raise UserError(
                "examples_per_epoch must be positive; got "
                f"{examples_per_epoch}."
            )
        self.log_dir = log_dir
        self.examples_per_epoch = int(examples_per_epoch)
        self._writer = None
        self._epoch_start = None
        self._train_seconds = None

    def learning_rates(self) -> list[float]:
        """The current learning rate of every block's optimizer."""
        optimizers = getattr(self.model, "block_optimizers", None)
        optimizers = optimizers or [self.model.optimizer]
        rates = []
        for optimizer in optimizers:
            optimizer = getattr(optimizer, "inner_optimizer", optimizer)
            rates.append(
                float(keras.ops.convert_to_numpy(optimizer.learning_rate))
            )
        return rates

    def on_train_begin(self, logs=None):
        if self._writer is None:
            self._writer = tf.summary.create_file_writer(
                os.path.join(self.log_dir, "train")
            )

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_start = time.perf_counter()
        self._train_seconds = None

    def on_test_begin(self, logs=None):
        # Validation inside fit: the epoch's training part is over.
        if self._epoch_start is not None and self._train_seconds is None:
            self._train_seconds = time.perf_counter() - self._epoch_start

    def on_epoch_end(self, epoch, logs=None):
        seconds = self._train_seconds
        if seconds is None:
            seconds = time.perf_counter() - self._epoch_start
        self._epoch_start = None
        examples_per_second = self.examples_per_epoch / max(seconds, 1e-9)
        if logs is not None:
            logs["examples_per_second"] = examples_per_second
        with self._writer.as_default():
            for block, rate in enumerate(self.learning_rates()):
                tf.summary.scalar(
                    f"epoch_block_{block}_learning_rate", rate, step=epoch
                )
            tf.summary.scalar(
                "epoch_examples_per_second", examples_per_second, step=epoch
            )
        self._writer.flush()

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.close()
            self._writer = None
