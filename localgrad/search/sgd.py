"""Functional momentum SGD with weight decay, and its cosine schedule.

The search's warm-up, its unrolled inner loop and its ordinary relaxed
steps all update weights with this one function, so a snapshot's momentum
buffers mean the same thing wherever they are used. The update is the
PyTorch convention the paper's code used:

    d = g + weight_decay * w;  v = momentum * v + d;  w = w - lr * v.

The update runs on all weights of a dtype concatenated into one vector:
the meta-gradient differentiates it once more, and TensorFlow builds
each operation's gradient in Python, so three operations instead of three
per weight tensor (ResNet-50 has 326) cut the time to the first
meta-iteration and the meta-iteration itself by about 8 %
(BENCHMARKS.md). The values are those of the per-tensor update.
"""

import itertools
import math
from collections.abc import Sequence

from keras import ops


def sgd_momentum_step(
    weights: Sequence,
    velocities: Sequence,
    gradients: Sequence,
    learning_rate,
    momentum: float,
    weight_decay: float,
) -> tuple[list, list]:
    """One momentum-SGD step on lists of tensors; returns new lists.

    Example:

    ```python
    weights, velocities = sgd_momentum_step(
        weights, velocities, gradients, learning_rate=0.1, momentum=0.9,
        weight_decay=1e-4)
    ```

    Args:
        weights: The current weights w.
        velocities: The momentum buffers v (zeros at the start).
        gradients: The loss gradients g, one per weight.
        learning_rate: A float or scalar tensor.
        momentum: The momentum coefficient.
        weight_decay: The L2 coefficient added to every gradient.

    Returns:
        `(new_weights, new_velocities)`.
    """
    weights, velocities, gradients = map(list, (weights, velocities, gradients))
    new_weights, new_velocities = list(weights), list(velocities)
    dtypes = [ops.dtype(w) for w in weights]
    for dtype in dict.fromkeys(dtypes):
        group = [i for i, d in enumerate(dtypes) if d == dtype]
        weight, velocity, gradient = (
            _concatenated([tensors[i] for i in group])
            for tensors in (weights, velocities, gradients)
        )
        rate = ops.cast(learning_rate, dtype)
        velocity = momentum * velocity + (gradient + weight_decay * weight)
        weight = weight - rate * velocity
        shapes = [weights[i].shape for i in group]
        for i, w, v in zip(
            group, _split(weight, shapes), _split(velocity, shapes)
        ):
            new_weights[i], new_velocities[i] = w, v
    return new_weights, new_velocities


def _concatenated(tensors):
    """The tensors flattened, one after the other, into one vector."""
    return ops.concatenate([ops.reshape(t, (-1,)) for t in tensors], axis=0)


def _split(flat, shapes):
    """The inverse of `_concatenated`: tensors of `shapes` from a vector."""
    sizes = [math.prod(shape) for shape in shapes]
    ends = list(itertools.accumulate(sizes))[:-1]
    parts = ops.split(flat, ends) if ends else [flat]
    return [ops.reshape(part, shape) for part, shape in zip(parts, shapes)]


def cosine_learning_rate(
    step: int, total_steps: int, initial: float, final: float
) -> float:
    """The cosine schedule from `initial` to `final` over `total_steps`.

    Steps past the end keep `final` (the meta-iterations' ordinary steps
    move snapshots past the warm-up's last step).

    Example:

    ```python
    cosine_learning_rate(0, 100, 0.1, 1e-3)    # 0.1
    cosine_learning_rate(100, 100, 0.1, 1e-3)  # 0.001
    ```
    """
    progress = min(max(step, 0), total_steps) / max(total_steps, 1)
    return final + 0.5 * (initial - final) * (1 + math.cos(math.pi * progress))
