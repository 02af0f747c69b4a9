"""Test set-up shared by every test module.

The CPU is split into three logical devices before TensorFlow starts, so that
multi-device code (MirroredStrategy, blocks on devices, a pipeline of three
blocks) runs on this machine.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402

_cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    _cpu, [tf.config.LogicalDeviceConfiguration()] * 3
)
