"""GreedyCompile: a GreedyModel's compile, one optimizer per block.

The part of `GreedyModel` that `compile` configures: each block's
objective, optimizer and trackers, the model's `metrics`, and the compile
config that `keras.saving` stores and restores.
"""

import keras

from localgrad.blocks.objective import HeadObjective, Objective
from localgrad.blocks.trackers import BlockTrackers
from localgrad.blocks.training_state import (
    CompileSpec,
    LearningRateFollower,
    checkpointed_variables,
    clone_optimizer,
)
from localgrad.blocks.transport_objective import TransportObjective
from localgrad.errors import UserError
from localgrad.keras_internals import metrics_container


class GreedyCompile:
    """A `GreedyModel`'s `compile` and what it configures (a mixin).

    It reads the model's `blocks`, `num_blocks`, `block_transports`,
    `optimizer` and `distribute_strategy`, and drains the executors
    (`GreedyExecution.finish_epoch`) before it compiles again; it keeps
    `_compiled` (a `CompileSpec`, None before `compile`, which the model's
    `__init__` sets). Subclasses change a block's objective or optimizer by
    overriding `_block_objective` or `_block_optimizer`
    (`AssociatedModel` does).

    Example:

    ```python
    model.compile(optimizer=keras.optimizers.SGD(0.05), loss=loss,
                  metrics=["accuracy"])
    model.block_optimizers  # K clones of the SGD optimizer
    ```
    """

    @property
    def block_optimizers(self) -> list:
        """One optimizer per block (clones of the compiled one)."""
        self._assert_compile_called("block_optimizers")
        return [block.optimizer for block in self.blocks]

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
            raise UserError(
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
        self._compiled.directions = metrics_container(
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
