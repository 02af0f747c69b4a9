"""The search configuration: every field of `localgrad-search`, its default,
and its checks.

`default_search_config()` lists what `localgrad-search` reads; the modules in
`localgrad/configs/search/` start from it and override what they change. The
defaults are the paper's search (methods.md §3) on CIFAR-10's VGG-19.
"""

from ml_collections import config_dict

from localgrad.config_fields import config_from
from localgrad.errors import UserError
from localgrad.search.meta_step import OBJECTIVES
from localgrad.search.search_fields import FIELDS


def default_search_config() -> config_dict.ConfigDict:
    """Every search field with its default.

    Example:

    ```python
    config = default_search_config()
    config.meta_iterations = 100
    localgrad.search.search_lib.run(config, "/tmp/search")
    ```

    Returns:
        A `ml_collections.ConfigDict`.
    """
    return config_from(FIELDS)


def cifar10_search_config(model: str) -> config_dict.ConfigDict:
    """The paper's CIFAR-10 search budget for a full-width `model`.

    2000 meta-iterations of T = 5 inner steps, ~50 snapshots, batch 128,
    standard augmentation; 50,000 warm-up steps (the released code's
    default).

    Example:

    ```python
    config = cifar10_search_config("vgg19")
    ```
    """
    config = default_search_config()
    config.model = model
    config.width = 1.0
    config.dataset = "cifar10"
    config.augment = True
    config.batch_size = 128
    config.meta_iterations = 2000
    config.inner_steps = 5
    config.memory_size = 50
    config.warmup_steps = 50_000
    return config


def check_search_config(config) -> None:
    """Checks the fields a search cannot start without.

    Raises:
        ValueError: naming the field and the fix.
    """
    known = set(default_search_config().keys())
    unknown = sorted(set(config.keys()) - known)
    if unknown:
        raise UserError(
            f"Unknown search config fields {unknown}; the fields are listed "
            "in localgrad/search/search_config.py."
        )
    if config.objective not in OBJECTIVES:
        raise UserError(
            f"config.objective={config.objective!r}; use 'valid' or "
            "'train_last'."
        )
    heads = config.heads
    if isinstance(heads, str):
        heads = tuple(h for h in heads.split(",") if h)
    if not heads:
        raise UserError(
            "config.heads is empty; give the candidate head names, e.g. "
            "--config.heads=light1,light2,light3,light4."
        )
    for name in (
        "batch_size",
        "warmup_steps",
        "memory_size",
        "inner_steps",
        "log_every",
    ):
        if config[name] < 1:
            raise UserError(f"config.{name} must be >= 1; got {config[name]}.")
    if config.meta_iterations < 0:
        raise UserError(
            f"config.meta_iterations must be >= 0; got "
            f"{config.meta_iterations}."
        )
