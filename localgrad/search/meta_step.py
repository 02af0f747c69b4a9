"""The compiled steps of a search: relaxed steps and the meta-gradient.

The inner loop is functional: the supernet is evaluated on substituted
weight tensors with Keras 3's `stateless_call`, T momentum-SGD steps (with
weight decay) are taken on those tensors, and BatchNorm's moving statistics
are read but never updated (each inner step normalizes with its batch's
statistics; the new moving statistics `stateless_call` returns are
dropped). An outer `tf.GradientTape` records the whole unroll, inner tapes
included, so the objective after T steps differentiates with respect to
(alpha, beta). Two details keep those second derivatives exact: the gates
detach for the inner tape only (`gates.tape_detach`), and batch moments
are taken without `tf.nn.moments`' stop-gradient (`exact_moments`).
"""

import functools

import tensorflow as tf
from keras import ops

from localgrad.search.exact_moments import exact_batch_moments
from localgrad.search.gates import (
    relaxed_loss,
    smoothed_cross_entropy,
    tape_detach,
)
from localgrad.search.sgd import sgd_momentum_step
from localgrad.search.state import SupernetState
from localgrad.search.supernet import RelaxedSupernet

OBJECTIVES = ("valid", "train_last")


class MetaStep:
    """The relaxed training step and the meta-gradient of one supernet.

    `objective="valid"` (default): after T inner steps on the training
    batches, the loss of the network's classifier (inference mode) on a
    validation batch. `objective="train_last"` (the released code): the
    total relaxed loss of the T-th training batch, at the weights after
    T - 1 inner steps. `first_order=True` takes each inner gradient at
    stop-gradient weights: the outer gradient keeps how (alpha, beta) shape
    each inner update and drops the second-order terms through the weights
    (Hessian-vector products); with T = 1 it is exact.

    Example:

    ```python
    steps = MetaStep(supernet, momentum=0.9, weight_decay=1e-4,
                     label_smoothing=0.1)
    state, loss = steps.relaxed_step(state, alpha, beta, x, y, 0.1)
    value, grad_alpha, grad_beta = steps.meta_gradient(
        state, alpha, beta, train_x, train_y, valid_x, valid_y, 0.1)
    ```

    Args:
        supernet: The `RelaxedSupernet`.
        momentum: Momentum of the inner SGD.
        weight_decay: L2 coefficient of the inner SGD (every weight).
        label_smoothing: ε of every cross-entropy, validation included.
        objective: `"valid"` or `"train_last"`.
        first_order: Drop the second-order terms through the weights.
        jit_compile: Compile the steps with XLA; False runs them as plain
            `tf.function` graphs (the fallback), None runs them eagerly.

    Raises:
        ValueError: for an unknown objective.
    """

    def __init__(
        self,
        supernet: RelaxedSupernet,
        momentum: float = 0.9,
        weight_decay: float = 1e-4,
        label_smoothing: float = 0.1,
        objective: str = "valid",
        first_order: bool = False,
        jit_compile: bool | None = True,
    ):
        if objective not in OBJECTIVES:
            raise ValueError(
                f"Unknown objective {objective!r}; use 'valid' (the "
                "validation loss after the unroll, the default) or "
                "'train_last' (the last inner training loss)."
            )
        self.supernet = supernet
        self.momentum = float(momentum)
        self.weight_decay = float(weight_decay)
        self.label_smoothing = float(label_smoothing)
        self.objective = objective
        self.first_order = bool(first_order)
        self.jit_compile = jit_compile
        network = supernet.network
        self._network_trainable = _positions(
            network.trainable_variables, supernet.trainable_variables
        )
        self._network_non_trainable = _positions(
            network.non_trainable_variables, supernet.non_trainable_variables
        )
        self.relaxed_step = self._compile(self._relaxed_step)
        self.meta_gradient = self._compile(self._meta_gradient)
        self.unrolled_objective = self._compile(self._unrolled_objective)

    def _compile(self, function):
        @functools.wraps(function)
        def traced(*args, **kwargs):
            with exact_batch_moments():
                return function(*args, **kwargs)

        if self.jit_compile is None:
            return traced
        return tf.function(traced, jit_compile=bool(self.jit_compile))

    def _relaxed_loss(self, trainable, non_trainable, probs, x, y, detach):
        """The relaxed loss on substituted weights, and the new BN stats."""
        alpha_probs, beta_probs = probs
        (logits, local_logits), new_non_trainable = (
            self.supernet.stateless_call(
                list(trainable),
                list(non_trainable),
                x,
                alpha_probs,
                beta_probs,
                training=True,
                detach=detach,
            )
        )
        loss = relaxed_loss(
            logits, local_logits, alpha_probs, y, self.label_smoothing
        )
        return loss, new_non_trainable

    def _loss_and_gradients(self, trainable, non_trainable, probs, x, y):
        """The relaxed loss, its weight gradients and the new BN stats."""
        if self.first_order:
            trainable = [ops.stop_gradient(w) for w in trainable]
        with tf.GradientTape() as tape:
            tape.watch(trainable)
            loss, new_non_trainable = self._relaxed_loss(
                trainable, non_trainable, probs, x, y, tape_detach(tape)
            )
        gradients = tape.gradient(loss, trainable)
        gradients = [
            ops.zeros_like(w) if g is None else g
            for w, g in zip(trainable, gradients)
        ]
        return loss, gradients, new_non_trainable

    def _probs(self, alpha, beta):
        if beta.shape[-1] == 1:  # One candidate: its weight is 1.
            return ops.softmax(alpha, axis=-1), ops.ones_like(beta)
        return ops.softmax(alpha, axis=-1), ops.softmax(beta, axis=-1)

    def _relaxed_step(self, state, alpha, beta, x, y, learning_rate):
        """One ordinary relaxed step; returns `(new_state, loss)`."""
        loss, gradients, non_trainable = self._loss_and_gradients(
            state.trainable,
            state.non_trainable,
            self._probs(alpha, beta),
            x,
            y,
        )
        trainable, velocities = sgd_momentum_step(
            state.trainable,
            state.velocities,
            gradients,
            learning_rate,
            self.momentum,
            self.weight_decay,
        )
        return (
            SupernetState(
                tuple(trainable), tuple(non_trainable), tuple(velocities)
            ),
            loss,
        )

    def _unrolled_objective(
        self,
        state,
        alpha,
        beta,
        train_x,
        train_y,
        valid_x,
        valid_y,
        learning_rate,
    ):
        """The objective after T inner steps (T = len(train_x)).

        The T steps are unrolled in the traced graph, so tracing and XLA
        compilation take about T times a step's. (A `tf.while_loop` would
        trace one step, but XLA cannot compile the gradient of some heads'
        ops inside it, and TensorFlow's graph runtime fails on it in large
        graphs: grappler turns gradient sums into `AccumulateNV2`, whose
        temporary variables collide across calls.)
        """
        probs = self._probs(alpha, beta)
        num_steps = train_x.shape[0]
        updates = num_steps - int(self.objective == "train_last")

        trainable, velocities = state.trainable, state.velocities
        for step in range(updates):
            _, gradients, _ = self._loss_and_gradients(
                trainable,
                state.non_trainable,
                probs,
                train_x[step],
                train_y[step],
            )
            trainable, velocities = sgd_momentum_step(
                trainable,
                velocities,
                gradients,
                learning_rate,
                self.momentum,
                self.weight_decay,
            )
        if self.objective == "train_last":
            # The loss as a function, as finite differences see it: no
            # gate acts on the outer gradient (detach is the identity).
            loss, _ = self._relaxed_loss(
                trainable,
                state.non_trainable,
                probs,
                train_x[num_steps - 1],
                train_y[num_steps - 1],
                lambda features: features,
            )
            return loss
        logits, _ = self.supernet.network.stateless_call(
            [trainable[i] for i in self._network_trainable],
            [state.non_trainable[i] for i in self._network_non_trainable],
            valid_x,
            training=False,
        )
        return smoothed_cross_entropy(logits, valid_y, self.label_smoothing)

    def _meta_gradient(
        self,
        state,
        alpha,
        beta,
        train_x,
        train_y,
        valid_x,
        valid_y,
        learning_rate,
    ):
        """`(objective, d objective / d alpha, d objective / d beta)`."""
        with tf.GradientTape() as outer:
            outer.watch([alpha, beta])
            value = self._unrolled_objective(
                state,
                alpha,
                beta,
                train_x,
                train_y,
                valid_x,
                valid_y,
                learning_rate,
            )
        grad_alpha, grad_beta = outer.gradient(value, [alpha, beta])
        if grad_alpha is None:
            grad_alpha = ops.zeros_like(alpha)
        if grad_beta is None:
            grad_beta = ops.zeros_like(beta)
        return value, grad_alpha, grad_beta


def _positions(variables, all_variables) -> list:
    """Where each of `variables` sits in `all_variables` (by identity)."""
    index = {id(v): i for i, v in enumerate(all_variables)}
    try:
        return [index[id(v)] for v in variables]
    except KeyError as error:
        raise ValueError(
            "The network's variables are not all in the supernet; build the "
            "RelaxedSupernet on this network."
        ) from error
