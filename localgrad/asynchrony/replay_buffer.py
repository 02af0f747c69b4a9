"""ReplayBuffer: the batches one block hands to the next, read at its pace.

In asynchronous DGL (Belilovsky et al., ICML 2020, §4) block k does not
wait for block k - 1: it reads (detached activation, labels, sample
weights) batches from a buffer of M slots that block k - 1 fills. The
buffer lives on the consuming block's device, so a write is the transfer.

The slot choice (the sampling policy, reuse counts, `max_reuse`, the
statistics) runs in TensorFlow ops, inside one `tf.CriticalSection` per
buffer: it works eagerly and inside `tf.function`, it runs on the buffer's
device with no Python round trip, and concurrent callers (a producer thread
writing while a consumer thread samples) each see the buffer whole.
"""

import contextlib
import functools
from typing import Any, NamedTuple

import tensorflow as tf

from localgrad.asynchrony.sampling import (
    check_sampling,
    choose_slot,
    eligible_slots,
)
from localgrad.errors import UserError

# Bins of the uses histogram when max_reuse is None; the last bin counts
# the batches read this many times or more.
UNBOUNDED_HISTOGRAM_BINS = 16


class ReplaySample(NamedTuple):
    """What `ReplayBuffer.sample` returns.

    `found` is a boolean scalar tensor. When it is false (the buffer is
    empty, or every slot has been read `max_reuse` times) the tensors have
    0 rows and `slot` is -1: the caller skips its turn.
    """

    found: tf.Tensor
    features: Any
    labels: Any
    sample_weight: tf.Tensor
    slot: tf.Tensor


class ReplayBuffer:
    """M slots of (detached features, labels, sample weights) batches.

    `write` puts a batch in the slot written longest ago (the oldest), and
    its use count starts at 0. `sample` picks a slot, counts one more use
    and returns a copy of its batch. The policies:

    - `"priority_lifo"` (the released code's only one): among the eligible
      slots used the fewest times, the most recently written.
    - `"fifo"`: among the eligible slots used the fewest times, the oldest:
      batches are read in the order they were written, then again.
    - `"uniform"`: any eligible slot, with equal probability, from a
      generator seeded with `seed` (the same sequence of calls gives the
      same slots).

    A slot is eligible once written and while it has been read fewer than
    `max_reuse` times. With no eligible slot, `sample` returns nothing
    (`found` false, empty tensors) and counts a skip.

    Batches may be smaller than the slots (the last batch of an epoch):
    a slot keeps its row count and `sample` returns those rows only. A
    batch larger than the slots is refused. Writing `sample_weight=None`
    stores weights of 1.

    Thread safety: `write`, `sample`, `statistics` and `clear` each run as
    one critical section on the buffer's device, so any number of threads
    may call them at once, eagerly or from their own `tf.function`s. Each
    is one `tf.function` call, even eagerly: on a worker of a cluster, an
    eager critical section that waits for another thread's would hold up
    the worker's queue of eager operations, the other thread's release
    among them (a deadlock). A
    sample is a copy: a later write does not change a batch being trained
    on. Do not call them inside a `jit_compile=True` function (XLA cannot
    compile a critical section), nor create the buffer inside a
    `tf.distribute` strategy scope (with data parallelism, give every
    replica's device its own buffer).

    The buffer is not a `tf.Module` nor a Keras layer: its variables are
    training machinery, never in checkpoints or saved models. A resumed run
    starts with empty buffers.

    Example:

    ```python
    features = tf.TensorSpec((128, 16, 16, 64))      # block k's output
    labels = tf.TensorSpec((128,), tf.int32)
    buffer = localgrad.ReplayBuffer(30, features, labels,
                                    device="/device:GPU:1")
    buffer.write(block_output, y)                     # producer, block k
    sample = buffer.sample()                          # consumer, block k+1
    if sample.found:
        train_block(sample.features, sample.labels, sample.sample_weight)
    buffer.statistics()["skips"]
    ```

    Args:
        buffer_size: M, the number of slots (batches) held.
        feature_spec: A `tf.TensorSpec`, or a nest of them, of one full
            batch of the hand-over (leading dimension: the batch size).
        label_spec: The same for the labels.
        sample_weight_spec: The same for the sample weights; by default
            float32 weights of shape `(batch_size,)`.
        sampling: `"priority_lifo"`, `"fifo"` or `"uniform"`.
        max_reuse: The number of reads after which a batch is no longer
            sampled, or `None` for no limit.
        device: Where the slots live (the consuming block's device), e.g.
            `"/device:CPU:1"`; `None` for TensorFlow's default placement.
        seed: The seed of the `"uniform"` policy.
        name: The name of the buffer's variables.

    Raises:
        ValueError: for buffer_size < 1, an unknown sampling, a max_reuse
            that is not a positive integer, specs without a common known
            batch size, a device that does not exist, or a creation inside
            a `tf.function` or a distribution strategy.
    """

    def __init__(
        self,
        buffer_size: int,
        feature_spec: Any,
        label_spec: Any,
        sample_weight_spec: tf.TensorSpec | None = None,
        sampling: str = "priority_lifo",
        max_reuse: int | None = None,
        device: str | None = None,
        seed: int = 0,
        name: str = "replay_buffer",
    ):
        _check_buffer_size(buffer_size)
        check_sampling(sampling, max_reuse)
        if not tf.executing_eagerly():
            raise UserError(
                "Create the ReplayBuffer eagerly (e.g. before fit or in a "
                "callback's on_train_begin), not inside a tf.function."
            )
        if tf.distribute.has_strategy():
            raise UserError(
                "Create the ReplayBuffer outside a tf.distribute strategy "
                "scope; with data parallelism give every replica's device "
                "its own buffer."
            )
        batch_size = _batch_size(tf.nest.flatten((feature_spec, label_spec)))
        if sample_weight_spec is None:
            sample_weight_spec = tf.TensorSpec((batch_size,), tf.float32)
        self._structure = (feature_spec, label_spec, sample_weight_spec)
        self._specs = tf.nest.flatten(self._structure)
        self.batch_size = _batch_size(self._specs)
        self.buffer_size = buffer_size
        self.sampling = sampling
        self.max_reuse = max_reuse
        self.seed = seed
        self.name = name
        self._requested_device = device
        bins = max_reuse + 1 if max_reuse else UNBOUNDED_HISTOGRAM_BINS
        with self._on_device(), tf.name_scope(name):
            self._slots = [
                tf.Variable(
                    tf.zeros((buffer_size, *spec.shape), spec.dtype),
                    trainable=False,
                    name=f"slot_{index}",
                )
                for index, spec in enumerate(self._specs)
            ]
            self._rows = _counter([buffer_size], tf.int32, "rows")
            # The write number that filled a slot, -1 for never written.
            self._written_at = tf.Variable(
                tf.fill([buffer_size], tf.constant(-1, tf.int64)),
                trainable=False,
                name="written_at",
            )
            self._uses = _counter([buffer_size], tf.int32, "uses")
            self._writes = _counter([], tf.int64, "writes")
            self._reads = _counter([], tf.int64, "reads")
            self._skips = _counter([], tf.int64, "skips")
            self._uses_histogram = _counter([bins], tf.int64, "histogram")
            self._rng = tf.random.Generator.from_seed(seed)
            self._seeded_state = self._rng.state.numpy()
            self._critical = tf.CriticalSection(name=f"{name}_lock")
        _check_placement(device, self.device)
        unbatched = tf.nest.map_structure(_any_batch, self._structure)
        # Partials, not bound methods: TensorFlow counts traces per code
        # object, and K buffers' first traces are no "frequent retracing".
        self._write_function = tf.function(
            functools.partial(ReplayBuffer._write, self),
            input_signature=list(unbatched),
        )
        self._sample_function = tf.function(
            functools.partial(ReplayBuffer._sample, self), input_signature=[]
        )
        self._statistics_function = tf.function(
            functools.partial(ReplayBuffer._statistics, self),
            input_signature=[],
        )
        self._clear_function = tf.function(
            functools.partial(ReplayBuffer._clear, self), input_signature=[]
        )

    @property
    def device(self) -> str:
        """The full name of the device holding the slots."""
        return self._slots[0].device

    def write(self, features, labels, sample_weight=None) -> tf.Tensor:
        """Stores a batch in the oldest slot; returns the slot (int32).

        Args:
            features: The producing block's detached output, shaped like
                `feature_spec` with at most `batch_size` rows.
            labels: The batch's labels, with the same number of rows.
            sample_weight: Its sample weights, or `None` for weights of 1.

        Raises:
            ValueError: eagerly, for a batch larger than the slots or
                empty; inside a `tf.function` with an unknown batch size
                the same check raises `tf.errors.InvalidArgumentError`.
        """
        if sample_weight is None:
            weight_spec = self._structure[2]
            rows = tf.shape(tf.nest.flatten(features)[0])[0]
            sample_weight = tf.ones(
                tf.concat([[rows], weight_spec.shape[1:]], 0),
                weight_spec.dtype,
            )
        for leaf in tf.nest.flatten((features, labels, sample_weight)):
            rows = tf.convert_to_tensor(leaf).shape[0]
            if rows is not None and not 1 <= rows <= self.batch_size:
                raise UserError(
                    f"ReplayBuffer {self.name!r} holds batches of 1 to "
                    f"{self.batch_size} rows; got {rows}. Build it with "
                    "the largest batch size the producer writes."
                )
        with self._on_device():
            return self._write_function(features, labels, sample_weight)

    def sample(self) -> ReplaySample:
        """Picks a slot by the sampling policy and returns a copy of it.

        Returns:
            A `ReplaySample`; when nothing is eligible its `found` is false,
            its tensors have 0 rows and a skip is counted.
        """
        with self._on_device():
            return self._sample_function()

    def statistics(self) -> dict:
        """Counters for logs and TensorBoard, as tensors.

        Returns:
            A dict of `writes`, `reads`, `skips` (samples that found
            nothing), `filled` (slots holding a batch), `available`
            (slots still under `max_reuse`), `unread` (slots never read)
            and `uses_histogram`: bin r counts the batches overwritten
            after exactly r reads (the last bin: r or more).
        """
        with self._on_device():
            return self._statistics_function()

    def clear(self) -> None:
        """Empties the slots, zeroes the statistics and re-seeds."""
        with self._on_device():
            self._clear_function()

    def _write(self, features, labels, sample_weight):
        leaves = tf.nest.flatten((features, labels, sample_weight))
        rows = tf.shape(leaves[0])[0]
        checks = [
            tf.debugging.assert_equal(
                tf.shape(leaf)[0],
                rows,
                message=f"ReplayBuffer {self.name!r}: features, labels and "
                "sample weights must have the same number of rows.",
            )
            for leaf in leaves[1:]
        ]
        checks.append(
            tf.debugging.assert_less_equal(
                rows,
                self.batch_size,
                message=f"ReplayBuffer {self.name!r} holds batches of at "
                f"most {self.batch_size} rows.",
            )
        )
        checks.append(tf.debugging.assert_positive(rows))
        with self._on_device(), tf.control_dependencies(checks):
            padding = [0, self.batch_size - rows]
            padded = [
                tf.pad(leaf, [padding] + [[0, 0]] * (leaf.shape.rank - 1))
                for leaf in leaves
            ]

            def write_oldest_slot():
                slot = tf.cast(self._writes % self.buffer_size, tf.int32)
                evicted = self._written_at[slot] >= 0
                bins = self._uses_histogram.shape[0]
                uses_bin = tf.minimum(self._uses[slot], bins - 1)
                updates = [
                    self._uses_histogram.assign_add(
                        tf.one_hot(uses_bin, bins, dtype=tf.int64)
                        * tf.cast(evicted, tf.int64)
                    ),
                    _assign_row(self._rows, slot, rows),
                    _assign_row(self._written_at, slot, self._writes),
                    _assign_row(self._uses, slot, 0),
                ]
                updates += [
                    _assign_row(variable, slot, value)
                    for variable, value in zip(self._slots, padded)
                ]
                with tf.control_dependencies(updates):
                    updates.append(self._writes.assign_add(1))
                return _after(updates, slot)

            return self._critical.execute(write_oldest_slot)

    def _sample(self):
        with self._on_device():
            found, slot, values = self._critical.execute(self._take_slot)
        features, labels, sample_weight = tf.nest.pack_sequence_as(
            self._structure, values
        )
        return ReplaySample(found, features, labels, sample_weight, slot)

    def _take_slot(self):
        eligible = self._eligible()
        found = tf.reduce_any(eligible)
        choice = choose_slot(
            self.sampling, eligible, self._uses, self._written_at, self._rng
        )
        slot = tf.where(found, choice, 0)
        rows = tf.where(found, self._rows[slot], 0)
        values = [tf.gather(variable, slot)[:rows] for variable in self._slots]
        updates = [
            self._uses.assign_add(
                tf.one_hot(slot, self.buffer_size, dtype=tf.int32)
                * tf.cast(found, tf.int32)
            ),
            self._reads.assign_add(tf.cast(found, tf.int64)),
            self._skips.assign_add(tf.cast(tf.logical_not(found), tf.int64)),
        ]
        return _after(updates, (found, tf.where(found, slot, -1), values))

    def _statistics(self):
        with self._on_device():
            return self._critical.execute(self._read_statistics)

    def _eligible(self):
        return eligible_slots(self._written_at, self._uses, self.max_reuse)

    def _read_statistics(self):
        filled = self._written_at >= 0
        return {
            "writes": tf.identity(self._writes),
            "reads": tf.identity(self._reads),
            "skips": tf.identity(self._skips),
            "filled": _count(filled),
            "available": _count(self._eligible()),
            "unread": _count(filled & (self._uses == 0)),
            "uses_histogram": tf.identity(self._uses_histogram),
        }

    def _clear(self):
        with self._on_device():
            return self._critical.execute(self._zeroed)

    def _zeroed(self):
        updates = [
            self._rng.state.assign(self._seeded_state),
            self._written_at.assign(
                tf.fill([self.buffer_size], tf.constant(-1, tf.int64))
            ),
        ]
        updates += [
            variable.assign(tf.zeros_like(variable))
            for variable in (
                self._rows,
                self._uses,
                self._uses_histogram,
                self._writes,
                self._reads,
                self._skips,
            )
        ]
        return _after(updates, tf.constant(True))

    def _on_device(self):
        if self._requested_device is None:
            return contextlib.nullcontext()
        return tf.device(self._requested_device)


def _check_buffer_size(buffer_size):
    if (
        isinstance(buffer_size, bool)
        or not isinstance(buffer_size, int)
        or buffer_size < 1
    ):
        raise UserError(
            "buffer_size must be an integer >= 1 (the number of batches "
            f"held); got {buffer_size!r}."
        )


def _check_placement(requested, actual):
    """Refuses TensorFlow's silent fallback to another device."""
    if requested is None:
        return
    placed = tf.DeviceSpec.from_string(actual)
    if placed.make_merged_spec(tf.DeviceSpec.from_string(requested)) != placed:
        devices = [d.name for d in tf.config.list_logical_devices()]
        raise UserError(
            f"ReplayBuffer device {requested!r} does not exist here (the "
            f"slots fell back to {actual}); use one of {devices}."
        )


def _batch_size(specs):
    sizes = {spec.shape[0] if spec.shape.rank else None for spec in specs}
    if len(sizes) != 1 or None in sizes:
        raise UserError(
            "Every spec of a ReplayBuffer must have the same known leading "
            f"(batch) dimension; got shapes {[s.shape for s in specs]}."
        )
    return sizes.pop()


def _any_batch(spec):
    return tf.TensorSpec((None, *spec.shape[1:]), spec.dtype)


def _assign_row(variable, index, value):
    """`variable[index] = value`, in place.

    Not `variable[index].assign(value)`: on CPU, with that slice
    assignment a write to a 30-slot buffer of (128, 14, 14, 16) batches
    took 78 ms, with this scatter 2.3 ms (every asynchronous tick writes).
    """
    value = tf.convert_to_tensor(value, variable.dtype)
    return variable.scatter_nd_update(
        tf.reshape(index, (1, 1)), tf.expand_dims(value, 0)
    )


def _counter(shape, dtype, name):
    return tf.Variable(tf.zeros(shape, dtype), trainable=False, name=name)


def _after(updates, outputs):
    """`outputs`, computed only once every update has run.

    A critical section is released once its outputs are computed; an
    update that is no ancestor of them could run after the release.
    """
    with tf.control_dependencies(updates):
        return tf.nest.map_structure(tf.identity, outputs)


def _count(mask):
    return tf.reduce_sum(tf.cast(mask, tf.int64))
