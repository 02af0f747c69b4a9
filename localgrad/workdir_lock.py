"""WorkdirLock: one run at a time in a work directory.

Two runs in one workdir would interleave their checkpoints and overwrite
each other's config.json. `localgrad-train` and `localgrad-search` hold
`{workdir}/.lock` while they run: a second run there is refused, naming
the first (host, pid, since when). The lock is an advisory `flock` that
the kernel drops when its process ends, however it ends; a lock file
still naming a process that is gone (killed, crashed) is taken over with
a warning.
"""

import fcntl
import json
import os
import socket
import time

from absl import logging

from localgrad.errors import UserError

LOCK_FILE = ".lock"


class WorkdirInUseError(UserError):
    """Another run holds the work directory."""


class WorkdirLock:
    """Holds a work directory's lock for the length of a `with` block.

    Example:

    ```python
    with WorkdirLock("/tmp/run"):  # creates /tmp/run if missing
        ...  # train; another WorkdirLock("/tmp/run") is refused meanwhile
    ```

    Args:
        workdir: The run's directory.

    Raises:
        NotADirectoryError: (on entering) if `workdir` is a file.
        WorkdirInUseError: (on entering) if another run holds it.
    """

    def __init__(self, workdir: str):
        self.workdir = workdir
        self.path = os.path.join(workdir, LOCK_FILE)
        self._file = None

    def __enter__(self) -> "WorkdirLock":
        if os.path.exists(self.workdir) and not os.path.isdir(self.workdir):
            raise NotADirectoryError(
                f"The workdir {self.workdir} is a file: give a directory "
                "(a new one, or the workdir of the run to resume)."
            )
        os.makedirs(self.workdir, exist_ok=True)
        file = open(self.path, "a+")
        try:
            fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read(file)
            file.close()
            raise WorkdirInUseError(
                f"The workdir {self.workdir} is in use by another run "
                f"({_describe(holder)}): wait for it to end, or give "
                "another workdir."
            ) from None
        previous = _read(file)
        if previous:
            logging.warning(
                "Taking over %s: the run that held it (%s) is gone.",
                self.path,
                _describe(previous),
            )
        file.seek(0)
        file.truncate()
        json.dump(
            {
                "host": socket.gethostname(),
                "pid": os.getpid(),
                "since": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
            },
            file,
        )
        file.flush()
        self._file = file
        return self

    def __exit__(self, *exc_info):
        # Emptied, then unlocked: an empty lock file is a free one.
        self._file.seek(0)
        self._file.truncate()
        self._file.flush()
        fcntl.flock(self._file, fcntl.LOCK_UN)
        self._file.close()
        self._file = None


def _read(file):
    file.seek(0)
    text = file.read().strip()
    try:
        return json.loads(text) if text else {}
    except ValueError:
        return {"unreadable": text[:80]}


def _describe(holder):
    if not holder:
        return "a run that is just starting"
    if "pid" not in holder:
        return f"lock file content {holder.get('unreadable', '')!r}"
    return (
        f"pid {holder['pid']} on host {holder.get('host', '?')} since "
        f"{holder.get('since', '?')}"
    )
