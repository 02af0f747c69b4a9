"""What `compile` adds to a GreedyModel: optimizers, trackers, their saving."""

import dataclasses

import keras
import tensorflow as tf


@dataclasses.dataclass
class CompileSpec:
    """What compile was given and made (kept out of Keras' tracking).

    Attributes:
        loss: The compiled loss.
        metrics: The compiled metric specs, as given.
        trackers: Every block's trackers, flat, in Keras' metric order.
        directions: A Keras container of the same trackers (see
            `GreedyModel.compile`).
        learning_rate: Follows the compiled learning rate for the blocks.
    """

    loss: keras.losses.Loss
    metrics: list
    trackers: list = dataclasses.field(default_factory=list)
    directions: keras.metrics.Metric | None = None
    learning_rate: "LearningRateFollower | None" = None


class LearningRateFollower:
    """Passes a change of the compiled learning rate on to every block.

    Callbacks such as `keras.callbacks.ReduceLROnPlateau` set
    `model.optimizer.learning_rate`; with a constant learning rate (not a
    schedule, which each block runs on its own step count) the blocks
    follow at the next step.

    Example:

    ```python
    follower = LearningRateFollower(model.optimizer)
    model.optimizer.learning_rate = 0.01
    follower.follow(model.optimizer, model.block_optimizers)  # all 0.01
    ```

    Args:
        optimizer: The compiled optimizer.
    """

    def __init__(self, optimizer: keras.optimizers.Optimizer):
        rate = inner_optimizer(optimizer).get_config()["learning_rate"]
        self.schedule = not isinstance(rate, (int, float))
        self.rate = rate

    def follow(self, optimizer, block_optimizers) -> None:
        """Gives the blocks the compiled rate if it changed."""
        if self.schedule:
            return
        rate = inner_optimizer(optimizer).learning_rate
        rate = float(keras.ops.convert_to_numpy(rate))
        if rate != self.rate:
            for block_optimizer in block_optimizers:
                inner_optimizer(block_optimizer).learning_rate = rate
            self.rate = rate


def checkpointed_variables(weights, optimizers) -> tf.Module:
    """A TensorFlow trackable holding every variable training changes.

    Keras 3 layers and optimizers keep their variables in lists TensorFlow
    does not follow, so `tf.train.Checkpoint(model=model)` would reach few
    of them; a model attribute holding this module makes it reach all.

    Example:

    ```python
    model.state = checkpointed_variables(model.weights, optimizers)
    tf.train.Checkpoint(model=model).write("/tmp/checkpoint")
    ```
    """
    module = tf.Module(name="greedy_model_state")
    module.model_variables = list(weights)
    module.optimizer_variables = [optimizer_variables(o) for o in optimizers]
    return module


def optimizer_variables(optimizer) -> list:
    """The variables of an optimizer and of the one it wraps, if any."""
    variables, seen = [], set()
    for part in (optimizer, getattr(optimizer, "inner_optimizer", None)):
        for variable in part.variables if part is not None else []:
            if id(variable) not in seen:
                seen.add(id(variable))
                variables.append(variable)
    return variables


def inner_optimizer(optimizer):
    """The optimizer a `LossScaleOptimizer` wraps (else `optimizer`)."""
    return getattr(optimizer, "inner_optimizer", optimizer)


def clone_optimizer(optimizer):
    """A fresh optimizer with `optimizer`'s configuration."""
    return optimizer.__class__.from_config(optimizer.get_config())
