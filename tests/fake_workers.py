"""Sockets on 127.0.0.1 that look like workers to `distribute.answers`."""

import socket
import threading


def listening_socket():
    """Accepts connections (the kernel does) but never answers: a frozen
    process."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    return sock


def closed_port():
    """A port nothing listens on: a dead process."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


def settings_server():
    """Answers the HTTP/2 preface with a SETTINGS frame, as gRPC does."""
    sock = listening_socket()

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


def address(sock):
    """The `host:port` a socket from here listens on."""
    return f"127.0.0.1:{sock.getsockname()[1]}"
