"""A command's `main` run in the test's process, as its console script runs
it, without paying for a new process's TensorFlow import (~5 CPU s).

A command defines its flags on absl's global FLAGS when imported, and the
commands share flag names (--workdir, --config), so the module is
imported afresh for one run, then its flags (and the `--config.<field>`
flags parsing adds) are removed and absl's own (--verbosity) restored.
"""

import contextlib
import importlib
import sys

import pytest
from absl import flags


@contextlib.contextmanager
def _command(name):
    module_name = f"localgrad.commands.{name}"
    before = {
        flag: (flags.FLAGS[flag].value, flags.FLAGS[flag].present)
        for flag in flags.FLAGS
    }
    sys.modules.pop(module_name, None)
    try:
        yield importlib.import_module(module_name)
    finally:
        sys.modules.pop(module_name, None)
        for flag in set(flags.FLAGS) - set(before):
            delattr(flags.FLAGS, flag)
        for flag, (value, present) in before.items():
            if (flags.FLAGS[flag].value, flags.FLAGS[flag].present) != (
                value,
                present,
            ):
                flags.FLAGS[flag].value = value  # Resets logging levels.
                flags.FLAGS[flag].present = present


def run(name, *args, capsys, monkeypatch):
    """Runs `localgrad-<name> args`; returns (exit status, stdout, stderr)."""
    monkeypatch.setattr(sys, "argv", [f"localgrad-{name}", *args])
    with _command(name) as command, pytest.raises(SystemExit) as exit_info:
        command.main()
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out, captured.err.splitlines()
