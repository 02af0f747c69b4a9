"""A search's checkpoint: the weight memory plus one state file.

Layout of `{workdir}/checkpoint/`:

    memory/slot_SSS_VVVVVVVV.npz   one file per stored snapshot version
    search_state.npz               alpha, beta, their optimizer, counters,
                                   and the list of current snapshot files

Snapshot files are never overwritten: a save writes new ones, then moves a
new `search_state.npz` into place (an atomic rename), then deletes the
files it no longer lists. A kill at any moment leaves the previous complete
checkpoint readable. Every file is written and verified on read by
`localgrad.checkpoint_files` (flushed to disk, a manifest of checksums); a
damaged one is a clear error (there is no older state to fall back to).
"""

import os

import numpy as np

from localgrad import checkpoint_files
from localgrad.errors import UserError
from localgrad.search.weight_memory import WeightMemory

STATE_FILE = "search_state.npz"
MEMORY_DIR = "memory"


class SearchCheckpoint:
    """Saves and restores a search's state in one directory.

    Example:

    ```python
    checkpoint = SearchCheckpoint("/tmp/search/checkpoint")
    checkpoint.save(memory, {"alpha": alpha}, {"meta_iteration": 10})
    memory, arrays, meta = checkpoint.load(capacity=50)
    ```

    Args:
        directory: Where the checkpoint lives.
    """

    def __init__(self, directory: str):
        self.directory = directory
        self.memory_directory = os.path.join(directory, MEMORY_DIR)
        self.state_path = os.path.join(directory, STATE_FILE)

    def exists(self) -> bool:
        """Whether a complete checkpoint is there."""
        return os.path.exists(self.state_path)

    def save(self, memory: WeightMemory, arrays: dict, meta: dict) -> None:
        """Writes the memory's changed snapshots, then the state file.

        Args:
            memory: The weight memory.
            arrays: Named numpy arrays (alpha, beta, optimizer slots, ...).
            meta: JSON-serializable facts (counters, settings).
        """
        files = memory.save(self.memory_directory)
        meta = dict(meta, memory_files=files)
        checkpoint_files.write_arrays(self.state_path, arrays, meta)
        WeightMemory.remove_unlisted(self.memory_directory, files)

    def load(self, capacity: int) -> tuple[WeightMemory, dict, dict]:
        """Reads `(memory, arrays, meta)`.

        Raises:
            ValueError: if the checkpoint is damaged.
        """
        try:
            arrays, meta = checkpoint_files.read_arrays(self.state_path)
        except checkpoint_files.DamagedFileError as error:
            raise UserError(
                f"The search checkpoint is damaged: {error}. Delete "
                f"{self.directory} to start afresh."
            ) from error
        memory = WeightMemory.load(
            self.memory_directory, meta["memory_files"], capacity
        )
        return memory, arrays, meta

    def save_search(self, search, fingerprint: dict) -> None:
        """Saves a `Search`'s memory, (alpha, beta), Adam and counters.

        Args:
            search: The `Search`.
            fingerprint: The settings a resumed search must share.
        """
        arrays = {"alpha": search.alpha.numpy(), "beta": search.beta.numpy()}
        for index, variable in enumerate(search.meta_optimizer.variables):
            arrays[f"meta_optimizer_{index:03d}"] = np.asarray(variable)
        meta = dict(
            fingerprint=fingerprint,
            meta_iteration=search.meta_iteration,
            history=search.history,
        )
        self.save(search.memory, arrays, meta)

    def restore_search(self, search, fingerprint: dict) -> None:
        """Puts the saved state back into `search`.

        Raises:
            ValueError: if the checkpoint was written by a search with
                other settings, data or network (the message lists what
                differs).
        """
        memory, arrays, meta = self.load(search.memory.capacity)
        saved = meta["fingerprint"]
        differences = sorted(
            key
            for key in set(saved) | set(fingerprint)
            if saved.get(key) != fingerprint.get(key)
        )
        if differences:
            raise UserError(
                f"The checkpoint in {self.directory} was written by a "
                f"different search (it differs in {differences}). Use a new "
                "workdir, or delete that checkpoint to start afresh."
            )
        search.memory = memory
        search.alpha.assign(arrays["alpha"])
        search.beta.assign(arrays["beta"])
        for index, variable in enumerate(search.meta_optimizer.variables):
            variable.assign(arrays[f"meta_optimizer_{index:03d}"])
        search.meta_iteration = int(meta["meta_iteration"])
        search.history = list(meta["history"])
