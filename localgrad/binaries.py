"""What the commands (localgrad-train, ...) share: bad input is refused in
one line.

`run(main)` replaces `absl.app.run(main)`. A user error — a bad flag or
config field, a config file that does not load, a check of localgrad's
that refuses a value (`localgrad.UserError`), a missing file, a full disk
— prints `error: <message>` as one line on stderr, without a traceback,
and exits with status `EXIT_BAD_INPUT` (2). With `--verbosity=1` (or
higher), or with the environment variable `LOCALGRAD_TRACEBACK=1`, the
traceback is printed above that line. Any other exception is
unexpected: it keeps its traceback and Python's exit status 1.

`--help` prints the doc and flags of the module that defines `main` (the
command's, also when started as a console script) and exits 0.

What counts as a user error:

- a flag or config-file error while absl parses the flags (config files
  load then): an unknown field, a bad value, a config's own `ValueError`;
- `localgrad.UserError`, which localgrad raises where it checks its input;
- `FileNotFoundError`, `NotADirectoryError`, `IsADirectoryError` or
  `PermissionError` from anywhere (their message names the path), and an
  `OSError` saying that the disk is full;
- `absl.app.UsageError`.

A worker of the cluster that stops answering (`WorkerLostError`) ends
the command as a frozen one does: one line naming the task and how to
restart it, exit status 75 (the run resumes from its checkpoints).

Anything else, a `ValueError` from inside localgrad included, is a bug.
"""

import errno
import os
import sys
import traceback
from collections.abc import Callable, Sequence

from absl import app, flags

from localgrad.distribute.frozen_workers import FROZEN_WORKER_EXIT_CODE
from localgrad.distribute.lost_workers import WorkerLostError
from localgrad.errors import UserError

EXIT_BAD_INPUT = 2
TRACEBACK_VARIABLE = "LOCALGRAD_TRACEBACK"
# Print the command's doc and flags, and exit 0 (absl's --helpfull stays).
_HELP_FLAGS = ("-h", "-?", "--help", "-help", "--helpshort", "-helpshort")

_PATH_ERRORS = (
    FileNotFoundError,
    NotADirectoryError,
    IsADirectoryError,
    PermissionError,
)


def run(
    main: Callable[[list[str]], None], argv: Sequence[str] | None = None
) -> None:
    """Runs an absl `main` as `app.run` does, refusing bad input in one line.

    Example:

    ```python
    # localgrad-train
    def main(argv):
        train_lib.train_and_evaluate(FLAGS.config, FLAGS.workdir)

    if __name__ == "__main__":
        localgrad.binaries.run(main)
    ```

    Args:
        main: The binary's main, called with the arguments absl leaves.
        argv: The command line (`sys.argv` if None).

    Raises:
        SystemExit: with status `EXIT_BAD_INPUT` for a user error.
    """
    if _help_wanted(sys.argv if argv is None else argv):
        print(_help(main))
        sys.exit(0)

    def guarded_main(args):
        # Read now: a main may change absl's verbosity (export does).
        verbose = _traceback_wanted()
        try:
            return main(args)
        except (app.UsageError, UserError, *_PATH_ERRORS) as error:
            _refuse(error, verbose)
        except WorkerLostError as error:
            if verbose:
                traceback.print_exception(error, file=sys.stderr)
            sys.stderr.write(f"WorkerLostError: {one_line(str(error))}\n")
            end_process(FROZEN_WORKER_EXIT_CODE)
        except OSError as error:
            if error.errno not in (errno.ENOSPC, errno.EDQUOT):
                raise
            _refuse(
                error,
                verbose,
                f"{error}: free some space, then run the same command "
                "again (a training run or search resumes from its last "
                "checkpoint).",
            )

    app.run(guarded_main, argv=argv, flags_parser=_parse_flags)


def one_line(message: str) -> str:
    """`message` on one line; an embedded traceback keeps its last line.

    Example:

    ```python
    one_line("flag --config: bad file:\\nTraceback (most recent call "
             "last):\\n  ...\\nValueError: Unknown variant 'x'.")
    # "flag --config: bad file: ValueError: Unknown variant 'x'."
    ```
    """
    head, marker, tail = message.partition("Traceback (most recent call")
    lines = [line.strip() for line in head.splitlines() if line.strip()]
    if marker:
        last = [line.strip() for line in tail.splitlines() if line.strip()]
        lines += last[-1:]
    return " ".join(lines)


def end_process(status: int) -> None:
    """Ends the process at once with `status`, its output flushed.

    After a lost worker, TensorFlow's runtime (and, under the async
    schedule, a block's thread) may still wait on the dead worker; the
    interpreter's normal exit would unwind it and can abort ("terminate
    called ...", status -6) instead of exiting with `status`. Checkpoints
    are written atomically, so nothing is lost by not unwinding.

    Example:

    ```python
    end_process(FROZEN_WORKER_EXIT_CODE)  # never returns
    ```
    """
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


def _help_wanted(argv):
    return any(arg in _HELP_FLAGS for arg in argv[1:])


def _help(main):
    """The doc and flags of the module that defines `main` (a command's).

    absl's own --help shows the flags of `sys.argv[0]`'s module, which for
    a console script (localgrad-train) is pip's wrapper, not the command.
    """
    module = sys.modules[main.__module__]
    name = sys.argv[0] if module.__name__ == "__main__" else module.__name__
    doc = (module.__doc__ or "").strip()
    return f"{doc}\n\nFlags:\n{flags.FLAGS.module_help(name)}".strip()


def _parse_flags(argv):
    verbose = _traceback_wanted()
    try:
        return flags.FLAGS(argv)
    except (AttributeError, KeyError) as error:
        # ml_collections' way of saying that `--config.<field>` names no
        # field (a KeyError inside, with "Did you mean" hints).
        inner = error.args[0] if error.args else error
        if isinstance(inner, BaseException) and inner.args:
            inner = inner.args[0]
        field, *hints = str(inner).splitlines()
        _refuse(
            error, verbose, ". ".join([f"Unknown config field {field}"] + hints)
        )
    except (flags.Error, ValueError, OSError) as error:
        _refuse(error, verbose)


def _traceback_wanted():
    wanted = os.environ.get(TRACEBACK_VARIABLE, "") not in ("", "0")
    verbosity = flags.FLAGS["verbosity"]
    return wanted or (verbosity.present and verbosity.value >= 1)


def _refuse(error, show_traceback, message=None):
    if show_traceback:
        traceback.print_exception(error, file=sys.stderr)
    sys.stderr.write(f"error: {one_line(message or str(error))}\n")
    sys.stderr.flush()
    sys.exit(EXIT_BAD_INPUT)
