"""The pieces of a training run, built from plain arguments.

`localgrad.train_lib` reads a config and calls these; they know nothing of
configs, so that a Python user can build the same run by hand.
"""

from collections.abc import Sequence

import keras

from localgrad.associated import AssociatedModel
from localgrad.callbacks import GreedySchedule
from localgrad.callbacks.greedy_schedule import EVERY_STEP
from localgrad.errors import UserError
from localgrad.greedy_model import GreedyModel
from localgrad.network import Network
from localgrad.train_config import METHOD_HEADS
from localgrad.transport import Transport

LearningRate = float | keras.optimizers.schedules.LearningRateSchedule


def build_greedy_model(
    network: Network,
    method: str,
    num_blocks: int = 1,
    boundaries: Sequence[int] | None = None,
    heads: str | None = None,
    head_width: float | None = None,
    balance: str | None = None,
    decoupling: str | None = None,
    transport: Transport | None = None,
    devices: Sequence[str] = (),
    label_width: int | None = None,
    decoder_learning_rate_factor: float = 2.0,
    precise_batch_norm: int = 50,
) -> GreedyModel:
    """The GreedyModel of a method: backprop, DGL, PredSim or AL.

    Example:

    ```python
    net = localgrad.models.build("vgg11", (28, 28, 1), 10, width=0.25)
    model = build_greedy_model(net, "dgl", num_blocks=4)  # mlp_sr heads
    model = build_greedy_model(net, "backprop")            # K = 1
    net = localgrad.models.build("resnet18", (28, 28, 1), 10, width=0.25)
    model = build_greedy_model(net, "dgl", num_blocks=8, heads="cnn1",
                               transport=localgrad.Transport(tau=1.0))

    model = build_greedy_model(net, "associated", num_blocks=4,
                               label_width=300)  # an AssociatedModel
    ```

    Args:
        network: The network to split.
        method: `"backprop"` (one block), `"dgl"`, `"predsim"` or
            `"associated"` (Associated Learning).
        num_blocks: K (ignored by backprop).
        boundaries: Explicit boundaries instead of an even split.
        heads: A head name; None for the method's own (`mlp_sr` for DGL,
            `predsim` for PredSim).
        head_width: `width_mult` of the heads; None for 1.0, or, with
            `decoupling`, the width the search used (when the file says).
        balance: None, `"memory"` or `"compute"`.
        decoupling: A SEDONA `decoupling.json`: its K-block boundaries and
            heads are used (only the boundaries by `"associated"`).
        transport: A `localgrad.Transport` for every block, or None.
        devices: Device names to place the blocks on (empty: default).
        label_width: Associated Learning's label-code width n.
        decoder_learning_rate_factor: Associated Learning's label-side
            learning rate over the compiled one.

    Returns:
        The (uncompiled) `GreedyModel`.

    Raises:
        ValueError: for an unknown method, or what `GreedyModel` rejects.
    """
    devices = list(devices) or None
    kept = {"devices": devices, "precise_batch_norm": precise_batch_norm}
    if method == "backprop":
        return GreedyModel(network, num_blocks=1, transport=transport, **kept)
    if method == "associated" and decoupling is not None:
        return AssociatedModel.from_decoupling(
            network,
            decoupling,
            num_blocks,
            label_width=label_width,
            decoder_learning_rate_factor=decoder_learning_rate_factor,
            **kept,
        )
    if method == "associated":
        return AssociatedModel(
            network,
            num_blocks=None if boundaries else num_blocks,
            boundaries=list(boundaries) if boundaries else None,
            label_width=label_width,
            decoder_learning_rate_factor=decoder_learning_rate_factor,
            balance=balance,
            **kept,
        )
    if method not in METHOD_HEADS:
        raise UserError(
            f"Unknown method {method!r}; use backprop, dgl or predsim."
        )
    if decoupling is not None:
        given = {} if head_width is None else {"head_width": head_width}
        return GreedyModel.from_decoupling(
            network,
            decoupling,
            num_blocks,
            transport=transport,
            **kept,
            **given,
        )
    return GreedyModel(
        network,
        num_blocks=None if boundaries else num_blocks,
        boundaries=list(boundaries) if boundaries else None,
        heads=heads or METHOD_HEADS[method],
        head_width=1.0 if head_width is None else head_width,
        balance=balance,
        transport=transport,
        **kept,
    )


def learning_rate_schedule(
    kind: str,
    learning_rate: float,
    total_steps: int,
    warmup_steps: int = 0,
    decay_boundaries: Sequence[int] = (),
    decay_factor: float | Sequence[float] = 0.1,
) -> LearningRate:
    """A learning rate, constant or scheduled over `total_steps`.

    - `"constant"`: `learning_rate` throughout.
    - `"cosine"`: linear warm-up from 0 over `warmup_steps`, then cosine
      decay to 0 over the remaining steps (`keras` `CosineDecay`).
    - `"step"`: multiplied by `decay_factor` at each of `decay_boundaries`,
      or, for a list of factors, by the i-th factor at the i-th boundary.

    Example:

    ```python
    lr = learning_rate_schedule("cosine", 0.1, total_steps=1000,
                                warmup_steps=50)
    float(lr(50))   # 0.1
    float(lr(1000))  # 0.0
    # The AL paper's: x0.1 at 40, 60 and 80 % of the steps, x0.5 at 90 %.
    lr = learning_rate_schedule("step", 1e-4, 1000,
                                decay_boundaries=[400, 600, 800, 900],
                                decay_factor=[0.1, 0.1, 0.1, 0.5])
    float(lr(901))  # 5e-8
    ```

    Args:
        kind: `"constant"`, `"cosine"` or `"step"`.
        learning_rate: The peak learning rate.
        total_steps: The optimizer steps the schedule spans.
        warmup_steps: Warm-up steps (cosine only).
        decay_boundaries: Increasing steps of the step decays.
        decay_factor: The factor of each step decay, or one factor per
            boundary.

    Returns:
        A float or a `keras.optimizers.schedules.LearningRateSchedule`.

    Raises:
        ValueError: for an unknown kind or bad step counts.
    """
    if kind == "constant":
        return float(learning_rate)
    if kind == "cosine":
        if not 0 <= warmup_steps < total_steps:
            raise UserError(
                f"warmup_steps={warmup_steps} must be in [0, total_steps="
                f"{total_steps}): shorten the warm-up or train longer."
            )
        if warmup_steps:
            return keras.optimizers.schedules.CosineDecay(
                0.0,
                decay_steps=total_steps - warmup_steps,
                warmup_target=float(learning_rate),
                warmup_steps=warmup_steps,
            )
        return keras.optimizers.schedules.CosineDecay(
            float(learning_rate), decay_steps=total_steps
        )
    if kind == "step":
        boundaries = [int(step) for step in decay_boundaries]
        if any(b <= a for a, b in zip(boundaries, boundaries[1:])):
            raise UserError(
                f"Step decay boundaries {boundaries} must increase."
            )
        factors = _decay_factors(decay_factor, len(boundaries))
        if not boundaries:
            return float(learning_rate)
        values = [float(learning_rate)]
        for factor in factors:
            values.append(values[-1] * factor)
        return keras.optimizers.schedules.PiecewiseConstantDecay(
            boundaries, values
        )
    raise UserError(
        f"Unknown lr_schedule {kind!r}; use constant, cosine or step."
    )


def _decay_factors(decay_factor, count):
    """The factor of each of `count` step decays."""
    if isinstance(decay_factor, (int, float)):
        factors = [float(decay_factor)] * count
    else:
        factors = [float(factor) for factor in decay_factor]
        if len(factors) != count:
            raise UserError(
                f"{len(factors)} step decay factors {factors} for {count} "
                "boundaries: give one factor per boundary, or a single "
                "number for all."
            )
    if not all(factor > 0 for factor in factors):
        raise UserError(f"Step decay factors must be > 0; got {factors}.")
    return factors


def build_optimizer(
    name: str,
    learning_rate: LearningRate,
    momentum: float = 0.9,
    nesterov: bool = False,
    weight_decay: float = 0.0,
) -> keras.optimizers.Optimizer:
    """SGD with momentum or Adam, with the optimizer's own weight decay.

    Keras applies weight decay decoupled from the gradient:
    `w -= lr * weight_decay * w` at each step.

    Example:

    ```python
    optimizer = build_optimizer("sgd", 0.1, momentum=0.9, weight_decay=5e-4)
    ```

    Args:
        name: `"sgd"` or `"adam"`.
        learning_rate: A float or a schedule.
        momentum: SGD momentum.
        nesterov: SGD with Nesterov momentum.
        weight_decay: Weight decay coefficient (0 for none).

    Returns:
        A Keras optimizer.

    Raises:
        ValueError: for an unknown name.
    """
    decay = float(weight_decay) or None
    if name == "sgd":
        return keras.optimizers.SGD(
            learning_rate,
            momentum=float(momentum),
            nesterov=bool(nesterov),
            weight_decay=decay,
        )
    if name == "adam":
        return keras.optimizers.Adam(learning_rate, weight_decay=decay)
    raise UserError(f"Unknown optimizer {name!r}; use sgd or adam.")


def build_loss(label_smoothing: float = 0.0) -> keras.losses.Loss:
    """Cross-entropy on logits: sparse labels, or one-hot when smoothing.

    With `label_smoothing > 0` the labels must be one-hot (Keras smooths
    only dense labels).

    Example:

    ```python
    loss = build_loss(0.1)  # CategoricalCrossentropy(label_smoothing=0.1)
    ```

    Args:
        label_smoothing: In [0, 1).

    Returns:
        A Keras loss.
    """
    if label_smoothing > 0:
        return keras.losses.CategoricalCrossentropy(
            from_logits=True, label_smoothing=float(label_smoothing)
        )
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def block_train_steps(
    schedule: GreedySchedule,
    num_blocks: int,
    epochs: int,
    steps_per_epoch: int,
) -> list[int]:
    """How many steps each block trains in a run.

    Every step for the parallel, pipelined and asynchronous schedules (an
    async block trains `epochs` of its own); the steps of the block's
    phases for the sequential and multi-lap ones (e1 + k·e2 epochs for
    block k, as `GreedySchedule.plan` lays them out). A per-block
    learning-rate schedule over these many steps spans exactly the block's
    own phases.

    Example:

    ```python
    schedule = GreedySchedule("sequential", epochs_per_block=2,
                              extra_epochs_per_depth=1)
    block_train_steps(schedule, 3, epochs=9, steps_per_epoch=10)
    # [20, 30, 40]
    ```

    Args:
        schedule: The run's `GreedySchedule`.
        num_blocks: K.
        epochs: The run's epochs.
        steps_per_epoch: Training steps in one epoch.

    Returns:
        K step counts.

    Raises:
        ValueError: if `epochs` is not the schedule's `total_epochs(K)`, or
            a phase is too short to get a step.
    """
    if schedule.mode in EVERY_STEP:
        return [epochs * steps_per_epoch] * num_blocks
    schedule.check_epochs(num_blocks, epochs)
    steps = [0] * num_blocks
    for block, _, first, end in schedule.plan(num_blocks, steps_per_epoch):
        steps[block] += end - first
    return steps


def set_block_learning_rates(
    model: GreedyModel, learning_rates: Sequence[LearningRate]
) -> None:
    """Gives each block optimizer of a compiled model its learning rate.

    Example:

    ```python
    set_block_learning_rates(model, [learning_rate_schedule(
        "cosine", 0.1, steps) for steps in block_train_steps(...)])
    ```

    Args:
        model: A compiled `GreedyModel`.
        learning_rates: One schedule per block (or one float per block,
            if the model was compiled with a float learning rate).

    Raises:
        ValueError: if the count is not the number of blocks.
    """
    optimizers = model.block_optimizers
    if len(learning_rates) != len(optimizers):
        raise UserError(
            f"Got {len(learning_rates)} learning rates for "
            f"{len(optimizers)} blocks."
        )
    for optimizer, learning_rate in zip(optimizers, learning_rates):
        optimizer = getattr(optimizer, "inner_optimizer", optimizer)
        optimizer.learning_rate = learning_rate
