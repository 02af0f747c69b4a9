"""Cluster addresses: what parse_cluster and connect accept and refuse."""

import pytest

import localgrad


def test_a_string_and_a_list_give_the_same_addresses():
    expected = ["host0:2222", "10.0.0.2:2223", "[::1]:2224"]
    assert (
        localgrad.distribute.parse_cluster(
            " host0:2222,10.0.0.2:2223 , [::1]:2224"
        )
        == expected
    )
    assert localgrad.distribute.parse_cluster(expected) == expected
    assert localgrad.distribute.parse_cluster("h:080") == ["h:80"]


def test_task_names_follow_the_address_order():
    assert localgrad.distribute.task_name(3) == "/job:worker/replica:0/task:3"


@pytest.mark.parametrize(
    "cluster, message",
    [
        ("", r"entry 0 \(''\) is empty"),
        ([], "names no worker"),
        ("host0", r"entry 0 \('host0'\) has no port"),
        ("host0:2222,host1", r"entry 1 \('host1'\) has no port"),
        ("host0:99999", "invalid port '99999'.*1..65535"),
        ("host0:0", "invalid port '0'"),
        ("host0:http", "invalid port 'http'"),
        ("grpc://host0:2222", "has a scheme.*'host0:2222'"),
        ("::1:2222", "invalid host '::1'.*brackets"),
        ("host 0:2222", "invalid host 'host 0'"),
        ("host0:2222,host0:2222", "given twice.*tasks 0 and 1"),
        ("host0:2222,,host1:2222", r"entry 1 \(''\) is empty"),
        ([2222], "entry 0 is 2222, not a string"),
        (2222, "not int"),
    ],
)
def test_bad_addresses_are_refused_with_the_fix(cluster, message):
    with pytest.raises(ValueError, match=message) as error:
        localgrad.distribute.parse_cluster(cluster)
    if isinstance(cluster, str) and cluster:
        assert "host:port" in str(error.value)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(cluster="host0"), "has no port"),
        (dict(cluster="127.0.0.1:1", timeout=0), "positive"),
        (dict(cluster="127.0.0.1:1", devices_per_task="gpu"), "'one'"),
    ],
)
def test_connect_refuses_bad_arguments_before_touching_tensorflow(
    kwargs, message
):
    with pytest.raises(ValueError, match=message):
        localgrad.distribute.connect(**kwargs)
    assert localgrad.distribute.connected_cluster() == []


def test_connect_refuses_grpc_fail_fast_false(monkeypatch):
    monkeypatch.setenv("GRPC_FAIL_FAST", "false")
    with pytest.raises(ValueError, match="unset it"):
        localgrad.distribute.connect("127.0.0.1:1")


def _names(*devices):
    return [f"/job:worker/replica:0/task:{d}" for d in devices]


def test_worker_devices_prefer_accelerators_and_keep_task_order():
    available = [
        "/device:CPU:0",  # The chief's own: never chosen.
        *_names("1/device:CPU:0", "1/device:GPU:1", "1/device:GPU:0"),
        *_names("0/device:CPU:0"),
    ]
    one = localgrad.distribute.worker_devices(2, "one", available)
    assert one == _names("0/device:CPU:0", "1/device:GPU:0")
    every = localgrad.distribute.worker_devices(2, "all", available)
    assert every == _names("0/device:CPU:0", "1/device:GPU:0", "1/device:GPU:1")


def test_worker_devices_name_a_task_without_devices():
    available = _names("0/device:CPU:0")
    with pytest.raises(ValueError, match=r"task 1 .*task:1\) shows no device"):
        localgrad.distribute.worker_devices(2, "one", available)
