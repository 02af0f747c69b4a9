"""The search configuration: every field of `bin/search.py`, its default,
and its checks.

`default_search_config()` lists what `bin/search.py` reads; the modules in
`configs/search/` start from it and override what they change. The
defaults are the paper's search (methods.md §3) on CIFAR-10's VGG-19.
"""

from ml_collections import config_dict

from localgrad.search.meta_step import OBJECTIVES
from localgrad.search.supernet import DEFAULT_HEADS


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
    config = config_dict.ConfigDict()
    # The network, as bin/train.py will build it.
    config.model = "vgg19"
    config.width = 1.0
    # The data: the training split of a `localgrad.data` name;
    # `validation_fraction` of it is held out for the outer objective.
    config.dataset = "cifar10"
    config.data_dir = config_dict.placeholder(str)
    config.max_train_examples = config_dict.placeholder(int)  # None: all.
    config.validation_fraction = 0.4
    config.augment = True  # Random 4-pixel shifts and flips (images).
    config.batch_size = 128
    # The candidate heads of every non-last unit.
    config.heads = tuple(DEFAULT_HEADS)
    config.head_width = 1.0
    # Warm-up: the relaxed supernet with alpha = beta = 0, momentum SGD,
    # cosine from learning_rate to final_learning_rate over warmup_steps,
    # memory_size snapshots spread over it.
    config.warmup_steps = 50_000
    config.memory_size = 50
    config.learning_rate = 0.1
    config.final_learning_rate = 1e-3
    config.momentum = 0.9
    config.weight_decay = 1e-4
    config.label_smoothing = 0.1
    # Meta-iterations: T inner steps, Adam on (alpha, beta).
    config.meta_iterations = 2000
    config.inner_steps = 5
    config.meta_learning_rate = 1e-2
    config.meta_beta_1 = 0.5
    config.meta_beta_2 = 0.999
    config.objective = "valid"  # or "train_last" (the released code).
    config.first_order = False
    # Recompute each inner step in the meta-gradient's backward pass: keep
    # one inner step's tensors instead of T steps'.
    config.rematerialize = False
    # BatchNormalization through TensorFlow's fused kernel in the steps:
    # the same result, less memory (localgrad/search/fused_batch_norm.py).
    config.fused_batch_norm = True
    # XLA (for GPUs/TPUs); False runs plain TensorFlow graphs, much faster
    # on CPU (bench/search_cost.py).
    config.jit = True
    # Grappler's rewrites (TensorFlow's default). False starts a search
    # sooner, for a little more memory (localgrad/search/graph_rewrites.py).
    config.graph_rewrites = True
    config.seed = 0
    # Progress: a log line, TensorBoard summaries and (by default) a
    # checkpoint every log_every meta-iterations.
    config.log_every = 10
    config.checkpoint_every = config_dict.placeholder(int)
    return config


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
        raise ValueError(
            f"Unknown search config fields {unknown}; the fields are listed "
            "in localgrad/search/search_config.py."
        )
    if config.objective not in OBJECTIVES:
        raise ValueError(
            f"config.objective={config.objective!r}; use 'valid' or "
            "'train_last'."
        )
    heads = config.heads
    if isinstance(heads, str):
        heads = tuple(h for h in heads.split(",") if h)
    if not heads:
        raise ValueError(
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
            raise ValueError(f"config.{name} must be >= 1; got {config[name]}.")
    if config.meta_iterations < 0:
        raise ValueError(
            f"config.meta_iterations must be >= 0; got "
            f"{config.meta_iterations}."
        )
