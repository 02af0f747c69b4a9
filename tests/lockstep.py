"""Comparing two ways of running the same training steps, one step at a time.

Two executions of one step (XLA and the graph runtime, eager and graph)
round differently; over many steps a ReLU flips and the difference grows
far past rounding. Tests that compare such executions step the two models
in lock step: after each step the second takes the first's state.
"""

import numpy as np


def copy_training_state(source, target):
    """Gives `target` the weights and block optimizer state of `source`."""
    for ours, theirs in zip(target.weights, source.weights):
        ours.assign(theirs)
    for ours, theirs in zip(target.block_optimizers, source.block_optimizers):
        for a, b in zip(ours.variables, theirs.variables):
            a.assign(b)


def assert_same_steps(tried, reference, x, y, batch_size, steps, atol):
    """Each of `steps` batches: one step of both models, weights compared.

    `tried` then takes `reference`'s state, so that only one step's
    rounding separates them at every comparison.
    """
    for step in range(steps):
        batch = slice(batch_size * step, batch_size * (step + 1))
        for model in (tried, reference):
            model.train_on_batch(x[batch], y[batch])
        ours = tried.trainable_variables
        theirs = reference.trainable_variables
        assert len(ours) == len(theirs)
        for a, b in zip(ours, theirs):
            np.testing.assert_allclose(a.numpy(), b.numpy(), atol=atol)
        copy_training_state(reference, tried)
