"""Cluster addresses: parsing and checking `host:port` lists.

A cluster is the list of worker addresses, one per worker task, in task
order: `"host0:2222,host1:2222"` or `["host0:2222", "host1:2222"]`. Task k
is the k-th address, and its devices are named
`/job:worker/replica:0/task:k/device:...`.
"""

import re
from collections.abc import Sequence

from localgrad.errors import UserError

JOB_NAME = "worker"

# A host name or IPv4 address, or an IPv6 address in brackets.
_HOST = re.compile(
    r"^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?)$"
)
_FIX = (
    "Give every worker as host:port with a port in 1..65535, separated by "
    'commas: "host0:2222,host1:2222" (IPv6 in brackets: "[::1]:2222").'
)


def parse_cluster(cluster: str | Sequence[str]) -> list:
    """The worker addresses of a cluster, checked, in task order.

    Example:

    ```python
    parse_cluster("host0:2222, host1:2222")  # ["host0:2222", "host1:2222"]
    parse_cluster(["127.0.0.1:2222"])        # ["127.0.0.1:2222"]
    parse_cluster("host0")                   # ValueError: no port
    ```

    Args:
        cluster: A comma-separated string of `host:port` addresses, or a
            list of them, one per worker task.

    Returns:
        The addresses as a list of `"host:port"` strings, blanks removed.

    Raises:
        ValueError: if the cluster is empty, an address is not `host:port`
            with a port in 1..65535, or an address is given twice; the
            message names the entry and the fix.
    """
    if isinstance(cluster, str):
        entries = cluster.split(",")
    elif isinstance(cluster, Sequence):
        entries = list(cluster)
    else:
        raise UserError(
            f"A cluster is a string or a list of addresses, not "
            f"{type(cluster).__name__} ({cluster!r}). {_FIX}"
        )
    addresses = []
    for task, entry in enumerate(entries):
        if not isinstance(entry, str):
            raise UserError(
                f"Cluster entry {task} is {entry!r}, not a string. {_FIX}"
            )
        addresses.append(_checked_address(task, entry.strip()))
    if not addresses or addresses == [""]:
        raise UserError(f"The cluster {cluster!r} names no worker. {_FIX}")
    for task, address in enumerate(addresses):
        if addresses.index(address) != task:
            raise UserError(
                f"Address {address} is given twice (tasks "
                f"{addresses.index(address)} and {task}); every worker task "
                "needs its own host:port."
            )
    return addresses


def split_address(address: str) -> tuple:
    """The `(host, port)` of a checked address; IPv6 brackets removed.

    Example:

    ```python
    split_address("127.0.0.1:2222")  # ("127.0.0.1", 2222)
    split_address("[::1]:2222")      # ("::1", 2222)
    ```
    """
    host, port = address.rsplit(":", 1)
    return host.strip("[]"), int(port)


def task_name(task: int) -> str:
    """The TensorFlow name of worker task `task`.

    Example:

    ```python
    task_name(1)  # "/job:worker/replica:0/task:1"
    ```
    """
    return f"/job:{JOB_NAME}/replica:0/task:{task}"


def worker_command(addresses: Sequence[str], task: int) -> str:
    """The command that starts worker `task` of the cluster `addresses`.

    Example:

    ```python
    worker_command(["host0:2222", "host1:2222"], 1)
    # "localgrad-worker --cluster=host0:2222,host1:2222 --task=1"
    ```
    """
    return f"localgrad-worker --cluster={','.join(addresses)} --task={task}"


def _checked_address(task, entry):
    where = f"Cluster entry {task} ({entry!r})"
    if not entry:
        raise UserError(f"{where} is empty. {_FIX}")
    if "://" in entry:
        raise UserError(
            f"{where} has a scheme; give host:port alone, e.g. "
            f"{entry.split('://', 1)[1]!r}. {_FIX}"
        )
    host, separator, port = entry.rpartition(":")
    if not separator or not host:
        raise UserError(f"{where} has no port. {_FIX}")
    if not _HOST.match(host):
        raise UserError(f"{where} has an invalid host {host!r}. {_FIX}")
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise UserError(
            f"{where} has an invalid port {port!r}: a port is a number in "
            f"1..65535. {_FIX}"
        )
    return f"{host}:{int(port)}"
