"""Test set-up shared by every test module.

The suite runs in a network namespace of its own where the machine allows
it (tests/private_network.py), so that no worker it starts can be reached
from outside. The CPU is split into three logical devices before
TensorFlow starts, so that multi-device code (MirroredStrategy, blocks on
devices, a pipeline of three blocks) runs on this machine.
"""

import os

import private_network

NETWORK = private_network.enter()  # Before any thread or socket exists.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402

_cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    _cpu, [tf.config.LogicalDeviceConfiguration()] * 3
)


def pytest_report_header(config):
    return f"network: {NETWORK}"
