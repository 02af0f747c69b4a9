"""The bounded check that a worker answers, against sockets on 127.0.0.1."""

import socket
import threading

import localgrad
from localgrad.distribute import probe


def _listening_socket():
    """Accepts connections (the kernel does) but never answers: a frozen
    process."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    return sock


def _closed_port():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


def _settings_server():
    """Answers the HTTP/2 preface with a SETTINGS frame, as gRPC does."""
    sock = _listening_socket()

    def serve():
        while True:
            try:
                connection, _ = sock.accept()
            except OSError:
                return
            with connection:
                connection.recv(1024)
                connection.sendall(b"\x00\x00\x00\x04\x00\x00\x00\x00\x00")

    threading.Thread(target=serve, daemon=True).start()
    return sock


def test_a_closed_port_does_not_answer():
    assert not localgrad.distribute.answers(f"127.0.0.1:{_closed_port()}")


def test_a_frozen_listener_does_not_answer_within_the_timeout():
    with _listening_socket() as sock:
        port = sock.getsockname()[1]
        assert not localgrad.distribute.answers(
            f"127.0.0.1:{port}", timeout=0.3
        )


def test_a_server_that_sends_its_settings_answers():
    with _settings_server() as sock:
        address = f"127.0.0.1:{sock.getsockname()[1]}"
        assert localgrad.distribute.answers(address, timeout=5)


def test_silent_tasks_are_named_by_task_index():
    with _settings_server() as good, _listening_socket() as frozen:
        addresses = [
            f"127.0.0.1:{_closed_port()}",
            f"127.0.0.1:{good.getsockname()[1]}",
            f"127.0.0.1:{frozen.getsockname()[1]}",
        ]
        silent = probe.silent_tasks(addresses, timeout=1.0)
    assert silent == [0, 2]
