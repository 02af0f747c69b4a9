"""Runs the test suite in a network namespace of its own: loopback only.

A TensorFlow worker (`tf.distribute.Server`) listens on every interface of
its machine and runs whatever graph it is sent, and the suite starts many
of them. `enter()`, called by conftest.py before anything else, moves the
pytest process (and so every worker process, pytest-xdist worker and
subprocess it starts) into a new network namespace in which `lo` is the
only interface: nothing outside this process tree can reach a port the
suite opens.

That needs the right to create a namespace (root, or CAP_SYS_ADMIN);
where the machine refuses it, the suite runs in the machine's network and
says so in its header (see BUILD.md, "Tests").

Example:

```python
status = private_network.enter()  # before TensorFlow is imported
print(status)  # "private network namespace (loopback only)"
```
"""

import ctypes
import errno
import fcntl
import os
import socket
import struct

# Set in the process that entered the namespace, so that its children
# (pytest-xdist workers) keep it instead of making one each.
VARIABLE = "LOCALGRAD_TEST_NETWORK"
PRIVATE = "private network namespace (loopback only)"
_CLONE_NEWNET = 0x40000000
_SIOCGIFFLAGS = 0x8913
_SIOCSIFFLAGS = 0x8914
_IFF_UP = 0x1
_IFREQ = "16sH22x"  # struct ifreq: a name, then the flags.


def enter() -> str:
    """Enters a new loopback-only network namespace, once per process tree.

    Returns:
        What the suite runs in: `PRIVATE`, or why it runs in the machine's
        own network.
    """
    if VARIABLE in os.environ:
        return os.environ[VARIABLE]
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(_CLONE_NEWNET) == 0:
        _bring_up_loopback()
        status = PRIVATE
    else:
        reason = errno.errorcode.get(ctypes.get_errno(), "error")
        status = (
            f"the machine's network: a network namespace was refused "
            f"({reason}), so the cluster tests' workers listen on every "
            "interface"
        )
    os.environ[VARIABLE] = status
    return status


def _bring_up_loopback():
    # A new namespace's `lo` is down: `ip link set lo up`, without iproute2.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack(_IFREQ, b"lo", 0)
        flags = struct.unpack(
            _IFREQ, fcntl.ioctl(sock, _SIOCGIFFLAGS, request)
        )[1]
        fcntl.ioctl(
            sock, _SIOCSIFFLAGS, struct.pack(_IFREQ, b"lo", flags | _IFF_UP)
        )
