"""bin/worker.py: starts a server, says where, exits 0 on SIGTERM."""

import getpass
import os
import signal
import socket
import subprocess
import sys

import localgrad

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir))
WORKER = os.path.join(ROOT, "bin", "worker.py")


def _free_addresses(count):
    sockets = [socket.socket() for _ in range(count)]
    for sock in sockets:
        sock.bind(("127.0.0.1", 0))
    addresses = [f"127.0.0.1:{s.getsockname()[1]}" for s in sockets]
    for sock in sockets:
        sock.close()
    return addresses


def _start(*flags):
    return subprocess.Popen(
        [sys.executable, WORKER, *flags],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
    )


def test_worker_listens_says_where_and_exits_cleanly_on_sigterm():
    addresses = _free_addresses(2)
    worker = _start(f"--cluster={','.join(addresses)}", "--task=1")
    try:
        line = worker.stdout.readline()
        port = addresses[1].rsplit(":", 1)[1]
        # The truth about its socket: every interface, no authentication.
        assert line.startswith(
            f"Worker task 1 of 2 ({addresses[1]}, pid {worker.pid}) "
            f"listening on port {port} of EVERY interface of this machine, "
            "with no authentication or encryption: anyone who can reach "
            f"this port can run any code as user '{getpass.getuser()}'."
        ), line + worker.stderr.read()
        assert "trusted private network" in line
        assert localgrad.distribute.answers(addresses[1], timeout=10)
        assert not localgrad.distribute.answers(addresses[0], timeout=1)
        worker.send_signal(signal.SIGTERM)
        out, _ = worker.communicate(timeout=60)
    finally:
        if worker.poll() is None:
            worker.kill()
    assert worker.returncode == 0
    assert "Worker task 1 stopping." in out


def test_worker_refuses_a_task_outside_the_cluster():
    addresses = _free_addresses(2)
    worker = _start(f"--cluster={','.join(addresses)}", "--task=2")
    out, err = worker.communicate(timeout=120)
    assert worker.returncode != 0
    assert "task=2 is not a task of a cluster of 2 workers" in err
    assert "--task=0..1" in err
