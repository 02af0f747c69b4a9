"""The bounded check that a worker answers, against sockets on 127.0.0.1."""

from fake_workers import (
    address,
    closed_port,
    listening_socket,
    settings_server,
)

import localgrad
from localgrad.distribute import probe


def test_a_closed_port_does_not_answer():
    assert not localgrad.distribute.answers(f"127.0.0.1:{closed_port()}")


def test_a_frozen_listener_does_not_answer_within_the_timeout():
    with listening_socket() as sock:
        assert not localgrad.distribute.answers(address(sock), timeout=0.3)


def test_a_server_that_sends_its_settings_answers():
    with settings_server() as sock:
        assert localgrad.distribute.answers(address(sock), timeout=5)


def test_silent_tasks_are_named_by_task_index():
    with settings_server() as good, listening_socket() as frozen:
        addresses = [
            f"127.0.0.1:{closed_port()}",
            address(good),
            address(frozen),
        ]
        silent = probe.silent_tasks(addresses, timeout=1.0)
    assert silent == [0, 2]
