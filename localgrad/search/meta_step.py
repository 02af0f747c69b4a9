"""The compiled steps of a search: relaxed steps and the meta-gradient.

The inner loop is functional: the supernet is evaluated on substituted
weight tensors with Keras 3's `stateless_call`, T momentum-SGD steps (with
weight decay) are taken on those tensors, and BatchNorm's moving statistics
are read but never updated (each inner step normalizes with its batch's
statistics; the new moving statistics `stateless_call` returns are
dropped). Each inner step is one call of the compiled relaxed step, so
what is traced and compiled is one step and one objective, whatever T. An
outer `tf.GradientTape` records the T calls and the objective's, and
TensorFlow differentiates each call with a backward function (the inner
step's gradient differentiated again) built once per compiled step, so the
objective after T steps differentiates with respect to (alpha, beta)
through the whole unroll. Two details keep those second derivatives exact:
the gates detach for the inner tape only (`gates.tape_detach`), and batch
moments are taken without `tf.nn.moments`' stop-gradient
(`exact_moments`). BatchNormalization trains through TensorFlow's fused
kernel, whose second derivatives are exact too, and which keeps fewer
full-size tensors for the outer backward pass (`fused_batch_norm`).
"""

import contextlib
import functools

import tensorflow as tf
from keras import ops

from localgrad.callbacks.precise_batch_norm import batch_norm_layers
from localgrad.errors import UserError
from localgrad.search.exact_moments import exact_batch_moments
from localgrad.search.fused_batch_norm import fused_batch_normalization
from localgrad.search.gates import (
    relaxed_loss,
    smoothed_cross_entropy,
    tape_detach,
)
from localgrad.search.rematerialize import rematerialized
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

    `relaxed_step` (the warm-up's and each meta-iteration's ordinary
    step), `inner_step` (one step of the unroll) and the objectives are
    compiled functions, each traced once; `meta_gradient` calls them T + 1
    times under an outer tape.

    Example:

    ```python
    steps = MetaStep(supernet, momentum=0.9, weight_decay=1e-4,
                     label_smoothing=0.1)
    rate = tf.constant(0.1)  # A tensor: a float would retrace per value.
    state, loss = steps.relaxed_step(state, alpha, beta, x, y, rate)
    value, grad_alpha, grad_beta = steps.meta_gradient(
        state, alpha, beta, train_x, train_y, valid_x, valid_y, rate)
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
        rematerialize: Keep only each inner step's inputs for the
            meta-gradient and recompute the step in its backward pass
            (`rematerialized`): one inner step's tensors kept instead of T
            steps', for about one more inner step's computation per step.
        fused_batch_norm: Run BatchNormalization's training-mode calls
            through TensorFlow's fused kernel (`fused_batch_normalization`):
            the same values and derivatives, less memory, a shorter trace.

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
        rematerialize: bool = False,
        fused_batch_norm: bool = True,
    ):
        if objective not in OBJECTIVES:
            raise UserError(
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
        self.rematerialize = bool(rematerialize)
        self.fused_batch_norm = bool(fused_batch_norm)
        self._unrolled_step = (
            rematerialized(self._call_inner_step)
            if self.rematerialize
            else self._call_inner_step
        )
        self._batch_norms = batch_norm_layers(supernet)
        network = supernet.network
        self._network_trainable = _positions(
            network.trainable_variables, supernet.trainable_variables
        )
        self._network_non_trainable = _positions(
            network.non_trainable_variables, supernet.non_trainable_variables
        )
        self.relaxed_step = self._compile(self._relaxed_step)
        self.inner_step = self._compile(self._inner_step)
        self._train_objective = self._compile(self._train_loss)
        self._valid_objective = self._compile(self._valid_loss)

    def _compile(self, function):
        @functools.wraps(function)
        def traced(*args, **kwargs):
            with contextlib.ExitStack() as contexts:
                contexts.enter_context(exact_batch_moments())
                if self.fused_batch_norm:
                    contexts.enter_context(
                        fused_batch_normalization(self._batch_norms)
                    )
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

    def _inner_step(
        self,
        trainable,
        non_trainable,
        velocities,
        alpha,
        beta,
        x,
        y,
        learning_rate,
    ):
        """One step of the unroll: `(new_trainable, new_velocities)`.

        The relaxed step without its loss and new BatchNorm statistics:
        under the outer tape, TensorFlow differentiates every output of a
        compiled call, and those two would cost a backward pass of zeros.
        Likewise it differentiates with respect to every input, so the
        inputs that are data to the meta-gradient are cut from the graph
        here (the images' gradient alone is a second-order pass down to
        the first layer's full-size maps).
        """
        non_trainable = [ops.stop_gradient(v) for v in non_trainable]
        x, y = ops.stop_gradient(x), ops.stop_gradient(y)
        learning_rate = ops.stop_gradient(learning_rate)
        _, gradients, _ = self._loss_and_gradients(
            trainable, non_trainable, self._probs(alpha, beta), x, y
        )
        new_trainable, new_velocities = sgd_momentum_step(
            trainable,
            velocities,
            gradients,
            learning_rate,
            self.momentum,
            self.weight_decay,
        )
        return tuple(new_trainable), tuple(new_velocities)

    def unrolled_objective(
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

        Each inner step is a call of the compiled `inner_step` (the
        relaxed step without its loss and new BatchNorm statistics), and
        the objective one of a compiled objective function: both are
        traced once, whatever T.
        Under an outer tape, TensorFlow records each call as one
        operation and differentiates it with a backward function built
        once per compiled step, so the meta-gradient's graph does not
        grow with T either (only the T calls' saved tensors do).

        Args:
            state: The `SupernetState` the unroll starts from.
            alpha: `(L - 1, 2)` tensor.
            beta: `(L - 1, M)` tensor.
            train_x: `(T, B, ...)` training batches.
            train_y: `(T, B)` their labels.
            valid_x: `(B, ...)` the validation batch.
            valid_y: `(B,)` its labels.
            learning_rate: Scalar tensor, the inner SGD's rate.

        Returns:
            The scalar objective.
        """
        num_steps = int(train_x.shape[0])
        updates = num_steps - int(self.objective == "train_last")
        trainable, velocities = state.trainable, state.velocities
        for step in range(updates):
            trainable, velocities = self._unrolled_step(
                (trainable, velocities, alpha, beta),
                (
                    state.non_trainable,
                    train_x[step],
                    train_y[step],
                    learning_rate,
                ),
            )
        if self.objective == "train_last":
            return self._train_objective(
                trainable,
                state.non_trainable,
                alpha,
                beta,
                train_x[num_steps - 1],
                train_y[num_steps - 1],
            )
        return self._valid_objective(
            trainable, state.non_trainable, valid_x, valid_y
        )

    def _call_inner_step(self, differentiable, constants):
        """`inner_step` on (weights, velocities, alpha, beta) and the rest."""
        trainable, velocities, alpha, beta = differentiable
        non_trainable, x, y, learning_rate = constants
        return self.inner_step(
            trainable,
            non_trainable,
            velocities,
            alpha,
            beta,
            x,
            y,
            learning_rate,
        )

    def _train_loss(self, trainable, non_trainable, alpha, beta, x, y):
        """The relaxed loss of a batch as a function of the weights."""
        # The loss as finite differences see it: no gate acts on the
        # outer gradient (detach is the identity).
        loss, _ = self._relaxed_loss(
            trainable,
            non_trainable,
            self._probs(alpha, beta),
            x,
            y,
            lambda features: features,
        )
        return loss

    def _valid_loss(self, trainable, non_trainable, x, y):
        """The network classifier's loss (inference mode) on a batch."""
        logits, _ = self.supernet.network.stateless_call(
            [trainable[i] for i in self._network_trainable],
            [non_trainable[i] for i in self._network_non_trainable],
            x,
            training=False,
        )
        return smoothed_cross_entropy(logits, y, self.label_smoothing)

    def meta_gradient(
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
        """`(objective, d objective / d alpha, d objective / d beta)`.

        Args: as `unrolled_objective`.
        """
        alpha = ops.convert_to_tensor(alpha)
        beta = ops.convert_to_tensor(beta)
        with tf.GradientTape() as outer:
            outer.watch([alpha, beta])
            value = self.unrolled_objective(
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
        raise UserError(
            "The network's variables are not all in the supernet; build the "
            "RelaxedSupernet on this network."
        ) from error
