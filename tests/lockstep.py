"""Comparing two ways of running the same training steps, one step at a time.

Two executions of one step (XLA and the graph runtime, eager and graph)
round differently; over many steps a ReLU flips and the difference grows
far past rounding. Tests that compare such executions step the two models
in lock step: after each step the second takes the first's state.
"""


def copy_training_state(source, target):
    """Gives `target` the weights and block optimizer state of `source`."""
    for ours, theirs in zip(target.weights, source.weights):
        ours.assign(theirs)
    for ours, theirs in zip(target.block_optimizers, source.block_optimizers):
        for a, b in zip(ours.variables, theirs.variables):
            a.assign(b)
