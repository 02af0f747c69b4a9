"""Ending a run whose worker froze, instead of waiting for it for ever.

A worker that dies fails the chief's pending step at once
(`reporting_lost_workers` names it). A worker that freezes (a stopped or
wedged process, a machine swapping) keeps its connections open, and the
chief's step waits for it without a deadline: TensorFlow's remote
execution has none, and a step blocked inside TensorFlow cannot be
interrupted from Python. `stopping_on_frozen_workers` watches the workers
from a background thread, asking each every few seconds whether it
answers (`answers`); when one has been silent for `patience` seconds it
says which task, and how to resume, and ends the process. Checkpoints are
written atomically, so the run resumes from the last one.
"""

import concurrent.futures
import contextlib
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence

from localgrad.distribute.addresses import (
    parse_cluster,
    task_name,
    worker_command,
)
from localgrad.distribute.connect import connected_cluster
from localgrad.distribute.probe import answers
from localgrad.errors import UserError

# sysexits.h's EX_TEMPFAIL: the run can go on once the worker is back.
FROZEN_WORKER_EXIT_CODE = 75
_LONGEST_CHECK_INTERVAL = 5.0


@contextlib.contextmanager
def stopping_on_frozen_workers(
    cluster: str | Sequence[str] | None = None,
    patience: float = 60.0,
    on_frozen: Callable[[str], None] | None = None,
) -> Iterator[None]:
    """Ends the process when a worker stops answering for `patience` s.

    Inside the block, a daemon thread checks every worker (every
    `patience / 4` seconds, at most every 5 s, all in parallel). A task
    that has not answered for `patience` seconds is frozen: the thread
    calls `on_frozen` with a one-line message naming it, once, and stops
    watching. By default that writes the message to stderr and exits the
    process with `FROZEN_WORKER_EXIT_CODE` (75).

    Example:

    ```python
    with localgrad.distribute.stopping_on_frozen_workers(patience=120):
        model.fit(train_ds, epochs=10, callbacks=[checkpoints])
    ```

    Args:
        cluster: The workers' addresses; by default the cluster `connect`
            joined.
        patience: Seconds of silence after which a worker is frozen.
        on_frozen: Called with the message instead of ending the process.

    Raises:
        ValueError: if `patience` is not a positive number.
    """
    if isinstance(patience, bool) or not (
        isinstance(patience, (int, float)) and patience > 0
    ):
        raise UserError(
            f"patience must be a positive number of seconds; got {patience!r}."
        )
    addresses = (
        connected_cluster() if cluster is None else parse_cluster(cluster)
    )
    report = on_frozen or _exit_process
    interval = min(patience / 4, _LONGEST_CHECK_INTERVAL)
    done = threading.Event()

    def watch():
        heard = [time.monotonic()] * len(addresses)
        with concurrent.futures.ThreadPoolExecutor(len(addresses)) as pool:
            while not done.wait(interval):
                answered = pool.map(
                    lambda address: answers(address, timeout=interval),
                    addresses,
                )
                now = time.monotonic()
                heard = [
                    now if ok else last for ok, last in zip(answered, heard)
                ]
                frozen = [
                    task
                    for task, last in enumerate(heard)
                    if now - last >= patience
                ]
                if frozen and not done.is_set():
                    report(_frozen_message(addresses, frozen, patience))
                    return

    watcher = threading.Thread(
        target=watch, name="localgrad-frozen-workers", daemon=True
    )
    watcher.start()
    try:
        yield
    finally:
        done.set()


def _frozen_message(addresses, frozen, patience):
    tasks = ", ".join(
        f"task {task} at {addresses[task]} ({task_name(task)})"
        for task in frozen
    )
    restarts = "; ".join(worker_command(addresses, task) for task in frozen)
    return (
        f"Worker {tasks} has not answered for {patience:g} s: the run stops "
        f"here, its checkpoints are kept. Restart that worker ({restarts}) "
        "and run the same training command again to resume."
    )


def _exit_process(message):
    # The main thread is blocked inside TensorFlow, waiting for the frozen
    # worker: no exception can reach it, so the process ends from here.
    print(f"FrozenWorkerError: {message}", file=sys.stderr, flush=True)
    os._exit(FROZEN_WORKER_EXIT_CODE)
