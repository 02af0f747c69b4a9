"""A worker task: the TensorFlow server that runs blocks for the chief.

`localgrad-worker` is the command line around `serve`.
"""

import getpass
import os
import signal
from collections.abc import Sequence

import tensorflow as tf

from localgrad.distribute.addresses import (
    JOB_NAME,
    parse_cluster,
    split_address,
)
from localgrad.errors import UserError


def start_worker(
    cluster: str | Sequence[str], task: int, threads: int | None = None
) -> tf.distribute.Server:
    """Starts the `tf.distribute.Server` of worker task `task`.

    The server listens on the port of the task's address, on every
    interface of this machine, and serves until the process ends.

    Example:

    ```python
    server = start_worker("host0:2222,host1:2222", task=1)
    print(server.target)  # "grpc://host1:2222"
    ```

    Args:
        cluster: Every worker's `host:port`, in task order, the same on all
            machines and on the chief.
        task: This worker's index in `cluster`.
        threads: Threads for the operations this worker runs, both within
            one operation and across operations (`None`: TensorFlow's
            default, about one per core). One thread and a pinned core
            (`taskset -c k`) make a worker one core.

    Returns:
        The started server.

    Raises:
        UserError: if the cluster is malformed, `task` is not one of its
            tasks, `threads` is not a positive integer, or the task's port
            is taken.
    """
    addresses = parse_cluster(cluster)
    if isinstance(task, bool) or not isinstance(task, int):
        raise UserError(f"task={task!r} must be an integer task index.")
    if not 0 <= task < len(addresses):
        raise UserError(
            f"task={task} is not a task of a cluster of {len(addresses)} "
            f"workers: use --task=0..{len(addresses) - 1}, the index of this "
            "machine's address in --cluster."
        )
    config = tf.compat.v1.ConfigProto()
    if threads is not None:
        if isinstance(threads, bool) or not (
            isinstance(threads, int) and threads > 0
        ):
            raise UserError(
                f"threads={threads!r} must be a positive integer, or None "
                "for TensorFlow's default."
            )
        config.intra_op_parallelism_threads = threads
        config.inter_op_parallelism_threads = threads
    try:
        return tf.distribute.Server(
            tf.train.ClusterSpec({JOB_NAME: addresses}),
            job_name=JOB_NAME,
            task_index=task,
            protocol="grpc",
            config=config,
            start=True,
        )
    except tf.errors.UnknownError as error:
        if "Could not start gRPC server" not in str(error):
            raise
        port = split_address(addresses[task])[1]
        raise UserError(
            f"Worker task {task} cannot listen on port {port}: another "
            "program (another worker?) uses it, or this user may not. Free "
            f"the port (`ss -ltnp 'sport = :{port}'` shows who has it), or "
            "give this task another port in --cluster, on every machine."
        ) from error


def start_line(addresses: Sequence[str], task: int, pid: int) -> str:
    """What a worker says when it starts: where it listens, who can use it.

    TensorFlow's server listens on its port on every interface of the
    machine, whatever host its address names, and runs any graph it is
    sent, without authentication or encryption.

    Example:

    ```python
    start_line(["127.0.0.1:2222", "127.0.0.1:2223"], 1, 4321)
    # "Worker task 1 of 2 (127.0.0.1:2223, pid 4321) listening on port
    # 2223 of EVERY interface of this machine, with no authentication ..."
    ```
    """
    port = split_address(addresses[task])[1]
    return (
        f"Worker task {task} of {len(addresses)} ({addresses[task]}, pid "
        f"{pid}) listening on port {port} of EVERY interface of this "
        "machine, with no authentication or encryption: anyone who can "
        f"reach this port can run any code as user {getpass.getuser()!r}. "
        "Run workers only on a trusted private network or behind a "
        "firewall that admits only the chief (docs/devices.md, Security)."
    )


def serve(
    cluster: str | Sequence[str], task: int, threads: int | None = None
) -> None:
    """Runs worker task `task` until SIGTERM or SIGINT, then exits with 0.

    Prints one line once the server is up (`start_line`: what `LocalCluster`
    and scripts wait for), and one when it stops.

    Example:

    ```python
    serve("127.0.0.1:2222,127.0.0.1:2223", task=0, threads=1)
    ```

    Args:
        cluster: Every worker's `host:port`, in task order.
        task: This worker's index in `cluster`.
        threads: As in `start_worker`.

    Raises:
        ValueError: as `start_worker`.
    """
    # Blocked before the server starts its threads, which inherit the mask:
    # the signals wait for `sigwait` below, and no handler runs (a handler
    # that takes a lock can deadlock on one the main thread holds).
    stop_signals = {signal.SIGTERM, signal.SIGINT}
    signal.pthread_sigmask(signal.SIG_BLOCK, stop_signals)
    _server = start_worker(cluster, task, threads)  # Alive until exit.
    addresses = parse_cluster(cluster)
    print(start_line(addresses, task, os.getpid()), flush=True)
    signal.sigwait(stop_signals)
    print(f"Worker task {task} stopping.", flush=True)
    # A TensorFlow server cannot be stopped, and waiting for its threads at
    # exit can block: leave at once.
    os._exit(0)
