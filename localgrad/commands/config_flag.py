"""The commands' `--config` flag: a shipped config's name, or a file.

`--config=quickstart`, `--config=fashion_mnist:dgl` and
`--config=paper/cifar10_vgg19:sedona` name configs shipped in
`localgrad/configs/`; `--config=/some/dir/my_config.py:variant` loads a
file, as `ml_collections.config_flags.DEFINE_config_file` does. Fields are
overridden as with that flag (`--config.num_blocks=2`).
"""

from absl import flags
from ml_collections import config_flags

from localgrad import configs

# The flags defined here belong to the command that calls these functions
# (its --help lists them), not to this module.
flags.disclaim_key_flags()


def define_config_flag(
    help_string: str, default: str | None = None
) -> flags.FlagHolder:
    """Defines `--config`, taking a shipped config's name or a file path.

    Example:

    ```python
    CONFIG = define_config_flag("A config: a name (quickstart) or a file.")
    # --config=fashion_mnist:dgl --config.num_blocks=2
    CONFIG.value.num_blocks  # 2
    ```

    Args:
        help_string: The flag's help.
        default: The config when `--config` is not given (a name or a
            path); None: `--config` must be given.

    Returns:
        The flag's holder; its value is the loaded `ConfigDict`.
    """
    if default is not None:
        default = configs.resolve(default)
    holder = config_flags.DEFINE_config_file("config", default, help_string)
    # ml_collections' config file flag, its file parser wrapped so that a
    # name is first turned into the shipped file's path.
    flag = flags.FLAGS["config"]
    flag.parser = _NamedConfigParser(flag.parser)
    return holder


class _NamedConfigParser(flags.ArgumentParser):
    """Parses a config's name or path with ml_collections' file parser."""

    def __init__(self, file_parser: flags.ArgumentParser):
        self._file_parser = file_parser

    def parse(self, argument):
        # A ValueError here is absl's "flag --config=...: <message>".
        return self._file_parser.parse(configs.resolve(argument))

    def flag_type(self):
        return self._file_parser.flag_type()


def define_run_flags(config_help: str, run: str) -> None:
    """Defines `--config`, `--workdir` and `--show_config` for a command.

    `--workdir` is required unless `--show_config` asks only for the
    config's fields.

    Example:

    ```python
    define_run_flags("A config: a name or a file.", run="the run")
    # localgrad-train --config=quickstart --workdir=/tmp/q
    # localgrad-train --config=quickstart --show_config
    ```

    Args:
        config_help: The help of `--config`.
        run: What runs in the workdir ("the run", "the search"), for the
            message when `--workdir` is missing.
    """
    flags.DEFINE_string(
        "workdir", None, "Directory for checkpoints and results."
    )
    define_config_flag(config_help)
    flags.DEFINE_bool(
        "show_config",
        False,
        "Print every config field (value, default, description) and exit.",
    )
    flags.mark_flag_as_required("config")
    flags.register_multi_flags_validator(
        ["workdir", "show_config"],
        lambda values: values["workdir"] or values["show_config"],
        f"--workdir is required: the directory of {run}'s checkpoints and "
        "results.",
    )
