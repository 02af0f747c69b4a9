"""Functional momentum SGD with weight decay, and its cosine schedule.

The search's warm-up, its unrolled inner loop and its ordinary relaxed
steps all update weights with this one function, so a snapshot's momentum
buffers mean the same thing wherever they are used. The update is the
PyTorch convention the paper's code used:

    d = g + weight_decay * w;  v = momentum * v + d;  w = w - lr * v.
"""

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
    new_weights, new_velocities = [], []
    for weight, velocity, gradient in zip(weights, velocities, gradients):
        rate = ops.cast(learning_rate, weight.dtype)
        direction = gradient + weight_decay * weight
        velocity = momentum * velocity + direction
        new_velocities.append(velocity)
        new_weights.append(weight - rate * velocity)
    return new_weights, new_velocities


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
