"""The weight memory: snapshots of the supernet's training state.

SEDONA's warm-up trains the relaxed supernet once and keeps ~50 snapshots
spread over that schedule; every meta-iteration starts from one of them
and writes it back one ordinary step later. A snapshot is the full state a
step needs: weights, BatchNorm statistics, momentum buffers, and the step
count that sets its learning rate.
"""

import os
from typing import NamedTuple

import numpy as np

from localgrad import checkpoint_files
from localgrad.errors import UserError
from localgrad.search.state import SupernetState


class Snapshot(NamedTuple):
    """One stored training state and its step in the warm-up schedule."""

    step: int
    state: SupernetState


class WeightMemory:
    """A fixed-capacity list of snapshots that saves only what changed.

    Example:

    ```python
    memory = WeightMemory(capacity=50)
    memory.add(Snapshot(step=1000, state=state.numpy()))
    slot = memory.sample_slot(np.random.default_rng(0))
    snapshot = memory[slot]
    memory.replace(slot, Snapshot(snapshot.step + 1, new_state.numpy()))
    files = memory.save("/tmp/search/checkpoint/memory")
    memory = WeightMemory.load("/tmp/search/checkpoint/memory", files, 50)
    ```

    Args:
        capacity: The largest number of snapshots.

    Raises:
        ValueError: if `capacity < 1`.
    """

    def __init__(self, capacity: int):
        if int(capacity) != capacity or capacity < 1:
            raise UserError(
                f"The weight memory needs capacity >= 1 (the paper keeps "
                f"~50 snapshots); got {capacity!r}."
            )
        self.capacity = int(capacity)
        self._snapshots: list[Snapshot] = []
        self._files: list[str | None] = []
        self._version = 0

    def __len__(self) -> int:
        return len(self._snapshots)

    def __getitem__(self, slot: int) -> Snapshot:
        return self._snapshots[slot]

    @property
    def steps(self) -> list[int]:
        """The schedule step of every snapshot, by slot."""
        return [snapshot.step for snapshot in self._snapshots]

    def add(self, snapshot: Snapshot) -> None:
        """Appends a snapshot.

        Raises:
            ValueError: if the memory is full.
        """
        if len(self) >= self.capacity:
            raise UserError(
                f"The weight memory is full ({self.capacity} snapshots); "
                "replace a slot instead of adding."
            )
        self._snapshots.append(_as_numpy(snapshot))
        self._files.append(None)

    def replace(self, slot: int, snapshot: Snapshot) -> None:
        """Puts `snapshot` in `slot` (which must exist)."""
        self._snapshots[slot] = _as_numpy(snapshot)
        self._files[slot] = None

    def sample_slot(self, rng: np.random.Generator) -> int:
        """A slot drawn uniformly with `rng`.

        Raises:
            ValueError: if the memory is empty.
        """
        if not self._snapshots:
            raise UserError(
                "The weight memory is empty: run the warm-up (it fills the "
                "memory) before meta-iterations."
            )
        return int(rng.integers(len(self._snapshots)))

    def save(self, directory: str) -> list[str]:
        """Writes the snapshots changed since the last save.

        Every write goes to a new file, so files listed by an earlier save
        stay intact until the caller deletes them (`remove_unlisted`).

        Args:
            directory: Where the snapshot files go.

        Returns:
            The file name of every slot, in order: what `load` needs.
        """
        os.makedirs(directory, exist_ok=True)
        for slot, snapshot in enumerate(self._snapshots):
            if self._files[slot] is not None:
                continue
            self._version += 1
            name = f"slot_{slot:03d}_{self._version:08d}.npz"
            _write_snapshot(os.path.join(directory, name), snapshot)
            self._files[slot] = name
        return list(self._files)

    @staticmethod
    def remove_unlisted(directory: str, files: list[str]) -> None:
        """Deletes snapshot files in `directory` that `files` does not list."""
        keep = set(files)
        for name in os.listdir(directory):
            if name.startswith("slot_") and name not in keep:
                os.remove(os.path.join(directory, name))

    @classmethod
    def load(
        cls, directory: str, files: list[str], capacity: int
    ) -> "WeightMemory":
        """Reads the snapshots `save` listed.

        Raises:
            ValueError: if a listed file is missing or unreadable.
        """
        memory = cls(capacity)
        for name in files:
            path = os.path.join(directory, name)
            try:
                snapshot = _read_snapshot(path)
            except (OSError, ValueError, KeyError) as error:
                raise UserError(
                    f"Cannot read weight-memory snapshot {path}: {error}. "
                    "The search checkpoint is damaged; delete the workdir's "
                    "checkpoint directory to start the search afresh."
                ) from error
            memory._snapshots.append(snapshot)
            memory._files.append(name)
            version = int(name.rsplit("_", 1)[1].split(".")[0])
            memory._version = max(memory._version, version)
        return memory


def _as_numpy(snapshot: Snapshot) -> Snapshot:
    return Snapshot(int(snapshot.step), snapshot.state.numpy())


def _write_snapshot(path: str, snapshot: Snapshot) -> None:
    arrays = {"step": np.asarray(snapshot.step, np.int64)}
    for part, values in zip(SupernetState._fields, snapshot.state):
        for index, value in enumerate(values):
            arrays[f"{part}_{index:05d}"] = value
    checkpoint_files.write_arrays(path, arrays, {})


def _read_snapshot(path: str) -> Snapshot:
    data, _ = checkpoint_files.read_arrays(path)
    parts = {name: [] for name in SupernetState._fields}
    for key in sorted(data):
        if key == "step":
            continue
        part, _ = key.rsplit("_", 1)
        parts[part].append(data[key])
    step = int(data["step"])
    return Snapshot(
        step, SupernetState(*(tuple(parts[n]) for n in SupernetState._fields))
    )
