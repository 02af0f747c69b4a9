"""The slot-choice policies of a ReplayBuffer, as functions of tensors.

A buffer's state is, per slot, `written_at` (the number of the write that
filled it, -1 if never written) and `uses` (reads since then). These
functions are pure apart from the random generator of `"uniform"`, and
are traced into the buffer's critical section.
"""

import tensorflow as tf

from localgrad.errors import UserError

SAMPLINGS = ("priority_lifo", "fifo", "uniform")


def check_sampling(sampling: str, max_reuse: int | None) -> None:
    """Checks a sampling policy and a reuse limit.

    Raises:
        ValueError: for an unknown sampling or a max_reuse that is neither
            None nor an integer >= 1.
    """
    if sampling not in SAMPLINGS:
        raise UserError(
            f"Unknown sampling {sampling!r}; use one of {SAMPLINGS}."
        )
    if max_reuse is not None and (
        isinstance(max_reuse, bool)
        or not isinstance(max_reuse, int)
        or max_reuse < 1
    ):
        raise UserError(
            "max_reuse must be None (no limit) or an integer >= 1 (reads of "
            f"a batch before it is dropped); got {max_reuse!r}."
        )


def eligible_slots(
    written_at: tf.Tensor, uses: tf.Tensor, max_reuse: int | None
) -> tf.Tensor:
    """The slots a sample may return: written, read < max_reuse times.

    Example:

    ```python
    eligible_slots(tf.constant([0, 1, -1], tf.int64), tf.constant([2, 0, 0]),
                   max_reuse=2)  # [False, True, False]
    ```
    """
    eligible = written_at >= 0
    if max_reuse is not None:
        eligible &= uses < max_reuse
    return eligible


def choose_slot(
    sampling: str,
    eligible: tf.Tensor,
    uses: tf.Tensor,
    written_at: tf.Tensor,
    generator: tf.random.Generator,
) -> tf.Tensor:
    """The slot a policy picks among the eligible ones (int32 scalar).

    `"priority_lifo"`: among the eligible slots used the fewest times, the
    most recently written. `"fifo"`: among those, the oldest. `"uniform"`:
    one eligible slot drawn from `generator`, all equally likely. The
    result is meaningless when no slot is eligible.

    Example:

    ```python
    choose_slot("priority_lifo", tf.constant([True, True]),
                tf.constant([1, 1]), tf.constant([4, 5], tf.int64),
                generator)  # 1: both used once, slot 1 written last
    ```

    Args:
        sampling: One of `SAMPLINGS`.
        eligible: Boolean, one per slot (see `eligible_slots`).
        uses: int32 reads of each slot's batch.
        written_at: int64 write number of each slot's batch.
        generator: The random generator of `"uniform"`.
    """
    if sampling == "uniform":
        count = tf.reduce_sum(tf.cast(eligible, tf.int32))
        rank = generator.uniform([], 0, tf.maximum(count, 1), dtype=tf.int32)
        ranks = tf.cumsum(tf.cast(eligible, tf.int32)) - 1
        return tf.argmax(eligible & (ranks == rank), output_type=tf.int32)
    fewest = tf.reduce_min(tf.where(eligible, uses, tf.int32.max))
    least_used = eligible & (uses == fewest)
    if sampling == "priority_lifo":
        newest = tf.where(least_used, written_at, -1)
        return tf.argmax(newest, output_type=tf.int32)
    oldest = tf.where(least_used, written_at, tf.int64.max)
    return tf.argmin(oldest, output_type=tf.int32)
