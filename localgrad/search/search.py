"""`Search`: SEDONA's warm-up and meta-iterations, with checkpoints."""

import os
import time
from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf

from localgrad.data import holdout_mask
from localgrad.decoupling_file import network_facts
from localgrad.errors import UserError
from localgrad.network import Network
from localgrad.search.batches import BatchSampler
from localgrad.search.checkpoint import SearchCheckpoint
from localgrad.search.meta_step import MetaStep
from localgrad.search.monitor import SearchMonitor
from localgrad.search.result import SearchResult
from localgrad.search.sgd import cosine_learning_rate
from localgrad.search.state import SupernetState
from localgrad.search.supernet import DEFAULT_HEADS, RelaxedSupernet
from localgrad.search.weight_memory import Snapshot, WeightMemory

# Independent batch streams (see BatchSampler) and the slot-choice stream.
_WARMUP, _META_TRAIN, _META_VALID, _SLOTS = 0, 1, 2, 3


class Search:
    """Searches the decoupling of a network (SEDONA, methods.md §3).

    `run` holds out a validation split, warms the relaxed supernet up with
    alpha = beta = 0 (momentum SGD, cosine learning rate, weight decay,
    label smoothing) while filling the weight memory with snapshots spread
    over the schedule, then runs the meta-iterations: take a snapshot,
    unroll `inner_steps` functional SGD steps, differentiate the objective
    with respect to (alpha, beta) through the unroll, take an Adam step on
    them, and put the snapshot back after one ordinary relaxed step.

    Example:

    ```python
    net = localgrad.models.build("vgg19", (32, 32, 3), 10)
    search = localgrad.search.Search(net, meta_iterations=2000)
    result = search.run(x_train, y_train, workdir="/tmp/search")
    result.decoupling(4)  # ([3, 7, 12], ['light2', 'light1', 'light1'])
    ```

    With a workdir, the search checkpoints every `checkpoint_every`
    meta-iterations (and at every warm-up snapshot) and resumes from there
    when run again; it writes `decoupling.json`, `alpha_beta.png`,
    `search_history.json` and TensorBoard summaries under `tensorboard/`.

    Args:
        network: The `localgrad.Network` to search on.
        heads: The M candidate head names.
        head_width: `width_mult` of the candidate heads.
        batch_size: Training and validation batch size.
        validation_fraction: Part of the training set held out for the
            outer objective (40 % in the paper).
        warmup_steps: Length of the warm-up schedule, in steps.
        memory_size: Number of snapshots kept (~50 in the paper).
        learning_rate: Initial SGD learning rate (cosine to the final one
            over the warm-up; snapshots use the rate of their step).
        final_learning_rate: The cosine schedule's last rate.
        momentum: SGD momentum.
        weight_decay: SGD weight decay (every weight).
        label_smoothing: ε of every cross-entropy.
        meta_iterations: Number of meta-iterations (2000 in the paper).
        inner_steps: T, the unrolled steps per meta-iteration.
        meta_learning_rate: Adam's learning rate on (alpha, beta).
        meta_beta_1: Adam's beta_1.
        meta_beta_2: Adam's beta_2.
        objective: `"valid"` (default) or `"train_last"`; see `MetaStep`.
        first_order: Drop the second-order terms of the meta-gradient.
        rematerialize: Recompute each inner step in the meta-gradient's
            backward pass instead of keeping its tensors (one inner step's
            at a time instead of T steps'; see `MetaStep`); the same
            result, so a search may resume with it switched.
        fused_batch_norm: Train BatchNormalization through TensorFlow's
            fused kernel in the steps (see `MetaStep`); the same result.
        jit_compile: Compile the steps with XLA (False: plain graphs).
            XLA is meant for accelerators: on CPU, TensorFlow's graph
            runtime ran VGG-19's steps about 8 times faster than XLA and
            traced in a quarter of the time (bench/search_cost.py).
        augment: Random shifts and flips of the training images.
        seed: Seed of the split, the batches and the snapshot choices.

    Raises:
        ValueError: for a bad setting (the message names it).
    """

    def __init__(
        self,
        network: Network,
        heads: Sequence[str] = DEFAULT_HEADS,
        head_width: float = 1.0,
        batch_size: int = 128,
        validation_fraction: float = 0.4,
        warmup_steps: int = 50_000,
        memory_size: int = 50,
        learning_rate: float = 0.1,
        final_learning_rate: float = 1e-3,
        momentum: float = 0.9,
        weight_decay: float = 1e-4,
        label_smoothing: float = 0.1,
        meta_iterations: int = 2000,
        inner_steps: int = 5,
        meta_learning_rate: float = 1e-2,
        meta_beta_1: float = 0.5,
        meta_beta_2: float = 0.999,
        objective: str = "valid",
        first_order: bool = False,
        rematerialize: bool = False,
        fused_batch_norm: bool = True,
        jit_compile: bool = True,
        augment: bool = False,
        seed: int = 0,
    ):
        for name, value, low in (
            ("batch_size", batch_size, 1),
            ("warmup_steps", warmup_steps, 1),
            ("memory_size", memory_size, 1),
            ("meta_iterations", meta_iterations, 0),
            ("inner_steps", inner_steps, 1),
        ):
            if isinstance(value, bool) or int(value) != value or value < low:
                raise UserError(
                    f"{name} must be an integer >= {low}; got {value!r}."
                )
        if not 0.0 < validation_fraction < 1.0:
            raise UserError(
                f"validation_fraction={validation_fraction} must be in "
                "(0, 1): the part of the training set held out for the "
                "outer objective (the paper holds out 0.4)."
            )
        self.network = network
        self.supernet = RelaxedSupernet(network, heads, head_width)
        self.steps = MetaStep(
            self.supernet,
            momentum=momentum,
            weight_decay=weight_decay,
            label_smoothing=label_smoothing,
            objective=objective,
            first_order=first_order,
            jit_compile=jit_compile,
            rematerialize=rematerialize,
            fused_batch_norm=fused_batch_norm,
        )
        self.settings = dict(
            heads=list(self.supernet.head_names),
            head_width=float(head_width),
            batch_size=int(batch_size),
            validation_fraction=float(validation_fraction),
            warmup_steps=int(warmup_steps),
            memory_size=int(memory_size),
            learning_rate=float(learning_rate),
            final_learning_rate=float(final_learning_rate),
            momentum=float(momentum),
            weight_decay=float(weight_decay),
            label_smoothing=float(label_smoothing),
            meta_iterations=int(meta_iterations),
            inner_steps=int(inner_steps),
            meta_learning_rate=float(meta_learning_rate),
            meta_beta_1=float(meta_beta_1),
            meta_beta_2=float(meta_beta_2),
            objective=objective,
            first_order=bool(first_order),
            augment=bool(augment),
            seed=int(seed),
        )
        self.dtype = keras.backend.standardize_dtype(
            network.trainable_variables[0].dtype
        )
        num_rows = network.num_units - 1
        self.alpha = keras.Variable(
            np.zeros((num_rows, 2)), dtype=self.dtype, name="alpha"
        )
        self.beta = keras.Variable(
            np.zeros((num_rows, self.supernet.num_candidates)),
            dtype=self.dtype,
            name="beta",
        )
        self.meta_optimizer = keras.optimizers.Adam(
            meta_learning_rate,
            beta_1=meta_beta_1,
            beta_2=meta_beta_2,
            epsilon=1e-8,
        )
        self.meta_optimizer.build([self.alpha, self.beta])
        self.memory = WeightMemory(memory_size)
        self.meta_iteration = 0
        self.history = []
        self._prepared = set()

    def run(
        self,
        x,
        y,
        workdir: str | None = None,
        log_every: int = 10,
        checkpoint_every: int | None = None,
    ) -> SearchResult:
        """Runs (or resumes) the search on a training set.

        Args:
            x: Training examples (numpy, `(N, ...)`); `validation_fraction`
                of them are held out for the outer objective.
            y: Integer labels `(N,)`.
            workdir: Where checkpoints, summaries and the artefacts go;
                None keeps everything in memory.
            log_every: A log line (and summaries) every this many
                meta-iterations.
            checkpoint_every: Checkpoint every this many meta-iterations
                (default `log_every`): a kill loses at most that many.

        Returns:
            A `SearchResult`.

        Raises:
            ValueError: for data that do not fit the network, or a
                checkpoint written by a different search.
        """
        settings = self.settings
        checkpoint_every = checkpoint_every or log_every
        x = np.asarray(x, dtype=self.dtype)
        y = np.asarray(y, dtype=np.int32)
        if tuple(x.shape[1:]) != tuple(self.network.example_shape):
            raise UserError(
                f"Examples of shape {tuple(x.shape[1:])} do not fit the "
                f"network's input shape {self.network.example_shape}."
            )
        held_out = holdout_mask(
            len(x), settings["validation_fraction"], settings["seed"]
        )
        train = BatchSampler(
            x[~held_out],
            y[~held_out],
            settings["batch_size"],
            settings["seed"],
            settings["augment"],
        )
        valid = BatchSampler(
            x[held_out], y[held_out], settings["batch_size"], settings["seed"]
        )
        fingerprint = self._fingerprint(len(x))
        checkpoint = monitor = None
        if workdir is not None:
            checkpoint = SearchCheckpoint(os.path.join(workdir, "checkpoint"))
            if checkpoint.exists():
                checkpoint.restore_search(self, fingerprint)
        monitor = SearchMonitor(
            None if workdir is None else os.path.join(workdir, "tensorboard"),
            self.network.unit_names,
            self.supernet.head_names,
        )

        def save():
            if checkpoint is not None:
                checkpoint.save_search(self, fingerprint)

        try:
            self._warmup(train, monitor, save)
            total = settings["meta_iterations"]
            while self.meta_iteration < total:
                start = time.perf_counter()
                value = self._first_call(
                    monitor,
                    "meta-iteration",
                    self._meta_iteration,
                    self.meta_iteration,
                    train,
                    valid,
                )
                seconds = time.perf_counter() - start
                self.meta_iteration += 1
                done = self.meta_iteration
                if done % log_every == 0 or done == total:
                    self.history.append(
                        dict(
                            meta_iteration=done,
                            objective=value,
                            seconds_per_iteration=seconds,
                        )
                    )
                    monitor.meta(
                        done, total, value, seconds, *self._probabilities()
                    )
                if done % checkpoint_every == 0 or done == total:
                    save()
        finally:
            monitor.close()
        result = self.result()
        if workdir is not None:
            result.write_artefacts(workdir)
        return result

    def result(self) -> SearchResult:
        """The current (alpha, beta) as a `SearchResult`."""
        return SearchResult(
            alpha=np.array(self.alpha.numpy(), np.float64),
            beta=np.array(self.beta.numpy(), np.float64),
            head_names=tuple(self.supernet.head_names),
            architecture=self.network.architecture,
            unit_names=tuple(self.network.unit_names),
            history=list(self.history),
            settings=dict(
                self.settings, meta_iterations_done=int(self.meta_iteration)
            ),
            network=network_facts(self.network),
        )

    def snapshot_steps(self) -> list[int]:
        """The warm-up steps after which a snapshot is stored."""
        total = self.settings["warmup_steps"]
        count = self.settings["memory_size"]
        return sorted(
            {round(total * (k + 1) / count) for k in range(count)} - {0}
        )

    def learning_rate(self, step: int) -> float:
        """The inner learning rate at schedule step `step`."""
        s = self.settings
        return cosine_learning_rate(
            step,
            s["warmup_steps"],
            s["learning_rate"],
            s["final_learning_rate"],
        )

    def _warmup(self, train, monitor, save):
        targets = self.snapshot_steps()
        total = self.settings["warmup_steps"]
        if len(self.memory) >= len(targets):
            return
        if len(self.memory):
            step = self.memory[len(self.memory) - 1].step
            state = self.memory[len(self.memory) - 1].state.tensors()
        else:
            step, state = 0, SupernetState.from_layer(self.supernet)
        zeros_alpha, zeros_beta = (tf.zeros_like(t) for t in self._decisions())
        pending = [t for t in targets if t > step]
        while step < total:
            batch_x, batch_y = train.batch(_WARMUP, step)
            state, loss = self._first_call(
                monitor,
                "relaxed step",
                self.steps.relaxed_step,
                state,
                zeros_alpha,
                zeros_beta,
                batch_x,
                batch_y,
                self._rate(step),
            )
            step += 1
            if pending and step == pending[0]:
                pending.pop(0)
                self.memory.add(Snapshot(step, state))
                monitor.warmup(
                    step,
                    total,
                    float(loss),
                    self.learning_rate(step - 1),
                    len(self.memory),
                )
                save()

    def _first_call(self, monitor, kind, function, *args):
        """Calls `function`, with progress lines the first time."""
        if kind in self._prepared:
            return function(*args)
        xla = "XLA" if self.steps.jit_compile else "no XLA"
        order = "first" if self.steps.first_order else "second"
        what, how = {
            "relaxed step": (
                "the relaxed step",
                f"tracing the supernet's training step, {xla}",
            ),
            "meta-iteration": (
                "the first meta-iteration",
                f"tracing the inner step's backward pass ({order} order) "
                f"and the objective once, whatever T; {xla}",
            ),
        }[kind]
        with monitor.preparing(what, how):
            result = function(*args)
        self._prepared.add(kind)
        return result

    def _meta_iteration(self, iteration, train, valid):
        """One meta-iteration; returns the objective's value."""
        rng = np.random.default_rng([self.settings["seed"], _SLOTS, iteration])
        slot = self.memory.sample_slot(rng)
        snapshot = self.memory[slot]
        rate = self._rate(snapshot.step)
        inner = self.settings["inner_steps"]
        first = iteration * (inner + 1)
        batches = [train.batch(_META_TRAIN, first + t) for t in range(inner)]
        train_x = np.stack([b[0] for b in batches])
        train_y = np.stack([b[1] for b in batches])
        valid_x, valid_y = valid.batch(_META_VALID, iteration)
        state = snapshot.state.tensors()
        value, grad_alpha, grad_beta = self.steps.meta_gradient(
            state,
            *self._decisions(),
            train_x,
            train_y,
            valid_x,
            valid_y,
            rate,
        )
        self.meta_optimizer.apply(
            [grad_alpha, grad_beta], [self.alpha, self.beta]
        )
        batch_x, batch_y = train.batch(_META_TRAIN, first + inner)
        state, _ = self.steps.relaxed_step(
            state, *self._decisions(), batch_x, batch_y, rate
        )
        self.memory.replace(slot, Snapshot(snapshot.step + 1, state))
        return float(value)

    def _decisions(self):
        """(alpha, beta) as tensors (the compiled steps take tensors)."""
        return (
            tf.convert_to_tensor(self.alpha.numpy()),
            tf.convert_to_tensor(self.beta.numpy()),
        )

    def _rate(self, step):
        return tf.constant(self.learning_rate(step), self.dtype)

    def _probabilities(self):
        result = self.result()
        return result.alpha_softmax, result.beta_softmax

    def _fingerprint(self, num_examples):
        fixed = {
            k: v for k, v in self.settings.items() if k != "meta_iterations"
        }
        return dict(
            fixed,
            architecture=self.network.architecture,
            unit_names=list(self.network.unit_names),
            num_examples=int(num_examples),
            weight_shapes=[list(v.shape) for v in self.supernet.weights],
        )
