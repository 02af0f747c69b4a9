"""Connecting the chief to a cluster of TensorFlow workers.

The chief (the process that runs `localgrad-train`) joins a cluster of
`tf.distribute.Server` workers (`localgrad-worker`, one per machine or per
core) with `tf.config.experimental_connect_to_cluster`; variables and
steps created under `tf.device(name)` then live and run on that worker.
Before TensorFlow is told of the cluster, every worker is checked to
answer within the timeout, because TensorFlow's first contact waits
forever for a worker that is not there.
"""

import os
from collections.abc import Sequence

import tensorflow as tf

from localgrad.distribute.addresses import (
    JOB_NAME,
    parse_cluster,
    task_name,
    worker_command,
)
from localgrad.distribute.probe import silent_tasks
from localgrad.errors import UserError

DEVICES_PER_TASK = ("one", "all")
_ACCELERATORS = ("GPU", "TPU")
_connected_addresses = []


def connect(
    cluster: str | Sequence[str],
    timeout: float = 60.0,
    devices_per_task: str = "one",
) -> list:
    """Connects this process to the workers; returns their device names.

    Start a worker on every machine first (`localgrad-worker
    --cluster=... --task=k`). The connection is process-wide, as
    TensorFlow's is: afterwards `tf.device(name)` places variables and
    `tf.function` steps on the named worker; operations without a device
    stay on this process. Connecting again replaces the cluster.

    Example:

    ```python
    devices = localgrad.distribute.connect("host0:2222,host1:2222")
    # ["/job:worker/replica:0/task:0/device:CPU:0",
    #  "/job:worker/replica:0/task:1/device:CPU:0"]
    with tf.device(devices[1]):
        block = keras.Sequential([keras.layers.Dense(10)])
        block.build((None, 4))  # its variables live on task 1
    ```

    Args:
        cluster: The workers' addresses in task order, as
            `"host0:2222,host1:2222"` or a list of `host:port` strings.
        timeout: Seconds to wait for every worker to answer (workers that
            are still starting get until then).
        devices_per_task: `"one"`: one device per task, its first GPU (or
            TPU) if it has one, else its CPU. `"all"`: every GPU (TPU) of
            every task, or the CPU of a task without one, task by task.

    Returns:
        Device names, `/job:worker/replica:0/task:k/device:TYPE:i`, in task
        order.

    Raises:
        ValueError: if an address is not `host:port`, the timeout is not
            positive, `devices_per_task` is unknown, `GRPC_FAIL_FAST=false`
            is set (a dead worker would then hang the chief), or a worker
            does not answer within `timeout`; the message names the task,
            its address and the fix.
    """
    addresses = parse_cluster(cluster)
    if not timeout > 0:
        raise UserError(f"timeout={timeout!r} must be a positive number.")
    if devices_per_task not in DEVICES_PER_TASK:
        raise UserError(
            f"devices_per_task={devices_per_task!r} is not one of "
            f"{DEVICES_PER_TASK}: 'one' device per worker task, or 'all' "
            "of a task's accelerators."
        )
    if os.environ.get("GRPC_FAIL_FAST", "").lower() == "false":
        raise UserError(
            "GRPC_FAIL_FAST=false makes TensorFlow wait forever for a "
            "worker that died, instead of failing: unset it (or set it to "
            "use_caller or true) before connecting to a cluster."
        )
    silent = silent_tasks(addresses, timeout)
    if silent:
        raise UserError(_silent_message(addresses, silent, timeout))
    tf.config.experimental_connect_to_cluster(
        tf.train.ClusterSpec({JOB_NAME: addresses})
    )
    _connected_addresses[:] = addresses
    return worker_devices(len(addresses), devices_per_task)


def connected_cluster() -> list:
    """The addresses of the cluster `connect` joined; `[]` before that.

    Example:

    ```python
    localgrad.distribute.connect("127.0.0.1:2222")
    localgrad.distribute.connected_cluster()  # ["127.0.0.1:2222"]
    ```
    """
    return list(_connected_addresses)


def worker_devices(
    num_tasks: int,
    devices_per_task: str = "one",
    available: Sequence[str] | None = None,
) -> list:
    """The device names of the connected worker tasks 0..num_tasks-1.

    Example:

    ```python
    worker_devices(2)  # ["/job:worker/replica:0/task:0/device:CPU:0",
                       #  "/job:worker/replica:0/task:1/device:CPU:0"]
    ```

    Args:
        num_tasks: The number of worker tasks of the cluster.
        devices_per_task: `"one"` or `"all"`, as in `connect`.
        available: Device names to choose from; by default the logical
            devices this process sees (`tf.config.list_logical_devices`).

    Returns:
        Device names in task order.

    Raises:
        ValueError: if a task shows no device (the cluster is not the one
            this process is connected to).
    """
    by_task = {task: [] for task in range(num_tasks)}
    if available is None:
        available = [d.name for d in tf.config.list_logical_devices()]
    for name in available:
        spec = tf.DeviceSpec.from_string(name)
        if spec.job == JOB_NAME and spec.task in by_task:
            by_task[spec.task].append(spec)
    names = []
    for task, specs in by_task.items():
        if not specs:
            raise UserError(
                f"Worker task {task} ({task_name(task)}) shows no device: "
                "this process is not connected to a cluster with that task; "
                "call localgrad.distribute.connect(cluster) first."
            )
        chosen = _chosen_devices(specs, devices_per_task)
        names.extend(_device_name(task, spec) for spec in chosen)
    return names


def _chosen_devices(specs, devices_per_task):
    def order(spec):
        return spec.device_type, spec.device_index

    accelerators = sorted(
        (s for s in specs if s.device_type in _ACCELERATORS), key=order
    )
    cpus = sorted((s for s in specs if s.device_type == "CPU"), key=order)
    chosen = accelerators or cpus or sorted(specs, key=order)
    return chosen if devices_per_task == "all" else chosen[:1]


def _device_name(task, spec):
    return f"{task_name(task)}/device:{spec.device_type}:{spec.device_index}"


def _silent_message(addresses, silent, timeout):
    lines = [
        f"{len(silent)} of {len(addresses)} workers did not answer within "
        f"{timeout:g} s:"
    ]
    for task in silent:
        lines.append(
            f"  task {task} at {addresses[task]} ({task_name(task)}): start "
            f"it on that machine with `{worker_command(addresses, task)}`, "
            "or correct its address."
        )
    lines.append(
        "A worker that is still starting needs a longer timeout "
        "(connect(..., timeout=...))."
    )
    return "\n".join(lines)
