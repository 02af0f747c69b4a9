"""The suite's workers cannot be reached from outside its process tree.

No packet is sent: the kernel's socket tables of the two network
namespaces are read instead (/proc/<pid>/net/tcp and tcp6).
"""

import glob
import socket

import pytest
from conftest import NETWORK
from private_network import PRIVATE

import localgrad

_LISTEN = "0A"  # The TCP state of a listening socket in /proc/net/tcp.


def _listening(pid):
    """{port: [local address, ...]} of the listening TCP sockets `pid` sees."""
    ports = {}
    for table in glob.glob(f"/proc/{pid}/net/tcp*"):
        with open(table) as file:
            for row in file.readlines()[1:]:
                local, state = row.split()[1], row.split()[3]
                if state == _LISTEN:
                    address, port = local.rsplit(":", 1)
                    ports.setdefault(int(port, 16), []).append(address)
    return ports


def test_workers_listen_only_inside_a_loopback_only_namespace():
    if NETWORK != PRIVATE:
        pytest.skip(NETWORK)
    assert [name for _, name in socket.if_nameindex()] == ["lo"]
    with localgrad.distribute.LocalCluster(1) as cluster:
        port = int(cluster.addresses[0].rsplit(":", 1)[1])
        inside = _listening(cluster.pids[0])
        outside = _listening(1)  # init's: the machine's own namespace.
    # TensorFlow's server listens on every interface (an all-zero address)
    # of its namespace, where loopback is the only one; the machine's
    # namespace has no such socket.
    assert port in inside and set("".join(inside[port])) == {"0"}
    assert port not in outside
