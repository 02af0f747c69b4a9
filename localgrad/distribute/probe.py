"""Whether a worker answers: a bounded check that never waits on TensorFlow.

TensorFlow's first contact with a worker waits for it without a deadline
(gRPC's "wait for ready"): connecting to an address where nothing listens,
or where a process is frozen, hangs the chief. The check here opens a
plain socket, speaks the first words of HTTP/2 (the protocol under gRPC)
and waits, at most `timeout` seconds, for the server's settings frame: a
`tf.distribute.Server` sends one at once; a closed port refuses, a frozen
process or another kind of server does not answer in time.
"""

import concurrent.futures
import socket
import time
from collections.abc import Sequence

from localgrad.distribute.addresses import split_address

# The HTTP/2 client preface and an empty SETTINGS frame (RFC 9113, 3.4).
_CLIENT_PREFACE = (
    b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
    + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"
)
_FRAME_HEADER_BYTES = 9
_SETTINGS_FRAME_TYPE = 4


def answers(address: str, timeout: float = 2.0) -> bool:
    """Whether a gRPC server (a TensorFlow worker) answers at `address`.

    Example:

    ```python
    answers("127.0.0.1:2222", timeout=1.0)  # False if nothing listens
    ```

    Args:
        address: A checked `host:port` (see `parse_cluster`).
        timeout: Seconds to wait for the connection and for the answer.

    Returns:
        True if the server sent its HTTP/2 settings within `timeout`.
    """
    host, port = split_address(address)
    deadline = time.monotonic() + timeout
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(_CLIENT_PREFACE)
            header = b""
            while len(header) < _FRAME_HEADER_BYTES:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                sock.settimeout(remaining)
                chunk = sock.recv(_FRAME_HEADER_BYTES - len(header))
                if not chunk:
                    return False
                header += chunk
    except OSError:  # Refused, unreachable, unknown host, timed out.
        return False
    return header[3] == _SETTINGS_FRAME_TYPE


def silent_tasks(
    addresses: Sequence[str], timeout: float, retry_seconds: float = 0.25
) -> list:
    """The tasks that do not answer, retried until `timeout` has passed.

    Workers that are still starting get until the deadline; the tasks are
    checked in parallel, so the wait is `timeout` at most, not per task.

    Example:

    ```python
    silent_tasks(["127.0.0.1:2222", "127.0.0.1:2223"], timeout=5.0)  # [1]
    ```

    Args:
        addresses: The workers' `host:port`, task k at index k.
        timeout: Seconds until a task that has not answered is given up.
        retry_seconds: Pause between two checks of a silent task.

    Returns:
        The sorted task indices that never answered.
    """
    deadline = time.monotonic() + timeout

    def wait_for(address):
        while True:
            remaining = deadline - time.monotonic()
            if answers(address, timeout=max(min(remaining, 2.0), 0.05)):
                return True
            if deadline - time.monotonic() <= retry_seconds:
                return False
            time.sleep(retry_seconds)

    with concurrent.futures.ThreadPoolExecutor(len(addresses)) as pool:
        answered = list(pool.map(wait_for, addresses))
    return [task for task, ok in enumerate(answered) if not ok]
