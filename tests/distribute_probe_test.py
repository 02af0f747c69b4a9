"""The bounded check that a worker answers, against sockets on 127.0.0.1."""

from fake_workers import closed_port, listening_socket, settings_server

import localgrad
from localgrad.distribute import probe


def test_a_closed_port_does_not_answer():
    assert not localgrad.distribute.answers(f"127.0.0.1:{closed_port()}")


def test_a_frozen_listener_does_not_answer_within_the_timeout():
    with listening_socket() as sock:
        port = sock.getsockname()[1]
        assert not localgrad.distribute.answers(
            f"127.0.0.1:{port}", timeout=0.3
        )


def test_a_server_that_sends_its_settings_answers():
    with settings_server() as sock:
        address = f"127.0.0.1:{sock.getsockname()[1]}"
        assert localgrad.distribute.answers(address, timeout=5)


def test_silent_tasks_are_named_by_task_index():
    with settings_server() as good, listening_socket() as frozen:
        addresses = [
            f"127.0.0.1:{closed_port()}",
            f"127.0.0.1:{good.getsockname()[1]}",
            f"127.0.0.1:{frozen.getsockname()[1]}",
        ]
        silent = probe.silent_tasks(addresses, timeout=1.0)
    assert silent == [0, 2]
