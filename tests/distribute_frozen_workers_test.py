"""A worker that freezes ends the run, named, instead of blocking it.

(The training binary's frozen worker is tested on the workers of
tests/distribute_pipelined_test.py, sparing a cluster.)
"""

import threading
import time

import pytest
from fake_workers import address, listening_socket, settings_server

import localgrad


def _watch(addresses, patience, seconds):
    """Messages `stopping_on_frozen_workers` reports within `seconds`."""
    reports = []
    reported = threading.Event()

    def on_frozen(message):
        reports.append(message)
        reported.set()

    with localgrad.distribute.stopping_on_frozen_workers(
        addresses, patience=patience, on_frozen=on_frozen
    ):
        reported.wait(seconds)
    return reports


def test_the_silent_task_is_named_once_after_its_patience():
    with settings_server() as good, listening_socket() as frozen:
        addresses = [address(good), address(frozen)]
        started = time.monotonic()
        reports = _watch(addresses, patience=1.0, seconds=10)
        waited = time.monotonic() - started
    assert len(reports) == 1
    assert f"task 1 at {addresses[1]}" in reports[0]
    assert "task 0" not in reports[0]
    assert f"--cluster={','.join(addresses)} --task=1" in reports[0]
    assert "\n" not in reports[0]
    assert 1.0 <= waited < 10


def test_workers_that_answer_are_never_reported():
    with settings_server() as first, settings_server() as second:
        reports = _watch([address(first), address(second)], 0.5, seconds=3)
    assert reports == []


@pytest.mark.parametrize("patience", [0, -1.0, True, "60"])
def test_bad_patience(patience):
    with pytest.raises(ValueError, match="patience must be a positive"):
        with localgrad.distribute.stopping_on_frozen_workers(
            ["127.0.0.1:1"], patience=patience
        ):
            pass
