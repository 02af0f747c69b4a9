"""Naming the worker that died when a distributed step fails.

When a worker process dies, TensorFlow fails the chief's pending step at
once (its execution calls fail fast on a broken connection) with an
`UnavailableError` whose text is gRPC's, somewhere in which a device name
may appear. `reporting_lost_workers` turns any TensorFlow error raised
while a worker is gone into a `WorkerLostError` that says which task, at
which address, and what to do.
"""

import concurrent.futures
import contextlib
from collections.abc import Iterator, Sequence

import tensorflow as tf

from localgrad.distribute.addresses import (
    parse_cluster,
    task_name,
    worker_command,
)
from localgrad.distribute.connect import connected_cluster
from localgrad.distribute.probe import answers


class WorkerLostError(RuntimeError):
    """A worker task stopped answering while the chief was running steps.

    Attributes:
        tasks: The indices of the worker tasks that do not answer.
        addresses: Their `host:port`, in the same order.
    """

    def __init__(self, message: str, tasks: list, addresses: list):
        super().__init__(message)
        self.tasks = tasks
        self.addresses = addresses


@contextlib.contextmanager
def reporting_lost_workers(
    cluster: str | Sequence[str] | None = None, timeout: float = 5.0
) -> Iterator[None]:
    """Re-raises a TensorFlow error as `WorkerLostError` if a worker is gone.

    Wrap what dispatches steps to workers (an executor's step, or a whole
    `model.fit`). A TensorFlow error raised inside is checked against the
    cluster: every worker is asked, in parallel and for `timeout` seconds
    at most, whether it answers; if one does not, the error becomes a
    `WorkerLostError` naming it (the original is its `__cause__`).
    Otherwise, and for any other exception, the error passes unchanged.

    Example:

    ```python
    devices = localgrad.distribute.connect("host0:2222,host1:2222")
    ...
    with localgrad.distribute.reporting_lost_workers():
        model.fit(train_ds, epochs=10, callbacks=[checkpoints])
    ```

    Args:
        cluster: The workers' addresses; by default the cluster `connect`
            joined.
        timeout: Seconds each worker has to answer after an error.

    Raises:
        WorkerLostError: if a TensorFlow error is raised inside while a
            worker does not answer.
    """
    addresses = (
        connected_cluster() if cluster is None else parse_cluster(cluster)
    )
    try:
        yield
    except tf.errors.OpError as error:
        silent = _silent_now(addresses, timeout)
        if not silent:
            raise
        raise WorkerLostError(
            _lost_message(addresses, silent, error),
            tasks=silent,
            addresses=[addresses[task] for task in silent],
        ) from error


def _silent_now(addresses, timeout):
    if not addresses:
        return []
    with concurrent.futures.ThreadPoolExecutor(len(addresses)) as pool:
        answered = list(pool.map(lambda a: answers(a, timeout), addresses))
    return [task for task, ok in enumerate(answered) if not ok]


def _lost_message(addresses, silent, error):
    reason = " ".join(
        line.strip() for line in str(error.message).splitlines()[:3]
    )
    lines = []
    for task in silent:
        lines.append(
            f"Worker task {task} at {addresses[task]} ({task_name(task)}) "
            "stopped answering during the run."
        )
    lines.append(f"TensorFlow said: {type(error).__name__}: {reason}")
    restarts = "; ".join(worker_command(addresses, task) for task in silent)
    lines.append(
        f"Restart it ({restarts}) and run the same training command again: "
        "training resumes from its last checkpoint."
    )
    return "\n".join(lines)
