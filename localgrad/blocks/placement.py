"""Placement: which device each block lives on, and moving it there."""

import warnings
from collections.abc import Sequence

import tensorflow as tf

from localgrad import keras_internals
from localgrad.errors import UserError


def assign_devices(
    devices: Sequence[str] | None, num_blocks: int
) -> list[str | None]:
    """One device per block, from the user's device list.

    With at least as many devices as blocks, block k is on `devices[k]`
    (the extra devices stay idle, said once in a warning); with fewer,
    consecutive blocks share a device (block k on
    `devices[k * D // K]`). Local names are checked against
    `tf.config.list_logical_devices()`; `/job:...` names against the
    devices of the connected cluster.

    Example:

    ```python
    assign_devices(["/cpu:0", "/cpu:1"], 4)
    # ['/device:CPU:0', '/device:CPU:0', '/device:CPU:1', '/device:CPU:1']
    ```

    Args:
        devices: Device names, or None/empty for the default placement.
        num_blocks: K.

    Returns:
        K device names as TensorFlow lists them (or K Nones).

    Raises:
        ValueError: for a device that does not exist (listing those that
            do), or a `/job:` name with no cluster connected.
    """
    if not devices:
        return [None] * num_blocks
    if isinstance(devices, str):
        raise UserError(
            f"devices={devices!r} must be a list of device names, e.g. "
            f"devices=[{devices!r}]."
        )
    resolved = [resolve_device(name) for name in devices]
    if len(resolved) > num_blocks:
        warnings.warn(
            f"{len(resolved)} devices for {num_blocks} blocks: "
            f"{resolved[num_blocks:]} stay idle.",
            stacklevel=3,
        )
    return [
        resolved[k * len(resolved) // num_blocks]
        if len(resolved) < num_blocks
        else resolved[k]
        for k in range(num_blocks)
    ]


def resolve_device(name: str) -> str:
    """The name TensorFlow lists for the one device `name` denotes.

    Example:

    ```python
    resolve_device("/cpu:1")  # '/device:CPU:1'
    ```

    Raises:
        ValueError: if no device (or several) match.
    """
    try:
        wanted = tf.DeviceSpec.from_string(str(name))
    except ValueError as error:
        raise UserError(
            f"{name!r} is not a device name ({error}); use names such as "
            "'/gpu:0', '/cpu:1' or '/job:worker/replica:0/task:1/device:"
            "CPU:0'."
        ) from error
    available = [device.name for device in tf.config.list_logical_devices()]
    matches = [d for d in available if _matches(wanted, d)]
    if wanted.job is None and len(matches) > 1:
        # A name without a job means this process's device, also when a
        # cluster's workers have one of the same type and index.
        matches = [
            d for d in matches if tf.DeviceSpec.from_string(d).job is None
        ] or matches
    if len(matches) == 1:
        return matches[0]
    if wanted.job not in (None, "localhost") and not matches:
        raise UserError(
            f"Device {name!r} is on job {wanted.job!r}, but no cluster with "
            "that job is connected: call localgrad.distribute.connect("
            "cluster) first (localgrad-train: --config.cluster=...). Devices "
            f"available: {available}."
        )
    if not matches:
        raise UserError(
            f"Device {name!r} does not exist on this machine. Devices "
            f"available: {available}. Pass some of these to devices=."
        )
    raise UserError(
        f"Device {name!r} matches several devices {matches}; name one of "
        "them fully."
    )


def move_variables(variables, device: str | None) -> None:
    """Re-creates each variable on `device`, keeping its value and identity.

    A TensorFlow variable cannot change device, so every Keras variable
    not already there gets a new `tf.Variable` (same value, name,
    trainability, aggregation) on `device`; layers, optimizers and saving
    keep referring to the same Keras variable object.

    Example:

    ```python
    move_variables(model.blocks[1].variables, "/device:CPU:1")
    ```
    """
    if device is None:
        return
    target = tf.DeviceSpec.from_string(device)
    for variable in variables:
        current = variable.value
        if _same_device(tf.DeviceSpec.from_string(current.device), target):
            continue
        with tf.device(device):
            moved = tf.Variable(
                current.read_value(),
                trainable=current.trainable,
                name=variable.name,
                aggregation=current.aggregation,
                synchronization=current.synchronization,
            )
        keras_internals.adopt_value(variable, moved)


def _matches(wanted: tf.DeviceSpec, full_name: str) -> bool:
    have = tf.DeviceSpec.from_string(full_name)
    wanted_type = (wanted.device_type or "").upper()
    return (
        (not wanted_type or wanted_type == have.device_type.upper())
        and wanted.device_index in (None, have.device_index)
        and wanted.job in (None, have.job or "localhost")
        and wanted.replica in (None, have.replica or 0)
        and wanted.task in (None, have.task or 0)
    )


def _same_device(first: tf.DeviceSpec, second: tf.DeviceSpec) -> bool:
    return (
        (first.device_type or "").upper() == (second.device_type or "").upper()
        and first.device_index == second.device_index
        and (first.job or "localhost") == (second.job or "localhost")
        and (first.task or 0) == (second.task or 0)
    )
