"""Every search config field: its default and what it is, in one line.

`localgrad.search.search_config.default_search_config()` is built from
`FIELDS`, and `localgrad-search --show_config` prints them next to a
config's values. The defaults are the paper's search (methods.md §3) on
CIFAR-10's VGG-19.

Example:

```python
{field.name: field.doc for field in FIELDS}["inner_steps"]
# "T: inner steps of each meta-iteration."
```
"""

from localgrad.config_fields import Field
from localgrad.search.supernet import DEFAULT_HEADS

FIELDS = (
    # The network, as localgrad-train will build it.
    Field("model", "vgg19", "The network: a name of localgrad.models."),
    Field("width", 1.0, "The network's width multiplier."),
    # The data: the training split of a `localgrad.data` name;
    # `validation_fraction` of it is held out for the outer objective.
    Field("dataset", "cifar10", "The data set: a localgrad.data name."),
    Field(
        "data_dir", None, "Where the data set's files are (None: default).", str
    ),
    Field(
        "max_train_examples",
        None,
        "Training examples used (None: all).",
        int,
    ),
    Field(
        "validation_fraction",
        0.4,
        "Fraction of train held out for the outer objective.",
    ),
    Field("augment", True, "Random 4-pixel shifts and flips (images)."),
    Field("batch_size", 128, "Batch size of every step."),
    Field(
        "heads",
        tuple(DEFAULT_HEADS),
        "The candidate heads of every non-last unit.",
    ),
    Field("head_width", 1.0, "The candidate heads' width multiplier."),
    # Warm-up: the relaxed supernet with alpha = beta = 0, momentum SGD,
    # cosine from learning_rate to final_learning_rate over warmup_steps,
    # memory_size snapshots spread over it.
    Field("warmup_steps", 50_000, "Steps of the warm-up."),
    Field("memory_size", 50, "Weight snapshots kept from the warm-up."),
    Field("learning_rate", 0.1, "The warm-up's initial learning rate."),
    Field("final_learning_rate", 1e-3, "The warm-up's final learning rate."),
    Field("momentum", 0.9, "SGD momentum."),
    Field("weight_decay", 1e-4, "SGD weight decay."),
    Field("label_smoothing", 0.1, "Label smoothing of the cross-entropy."),
    # Meta-iterations: T inner steps, Adam on (alpha, beta).
    Field("meta_iterations", 2000, "Meta-iterations (0: warm-up only)."),
    Field("inner_steps", 5, "T: inner steps of each meta-iteration."),
    Field("meta_learning_rate", 1e-2, "Adam's learning rate on alpha, beta."),
    Field("meta_beta_1", 0.5, "Adam's beta_1 on alpha, beta."),
    Field("meta_beta_2", 0.999, "Adam's beta_2 on alpha, beta."),
    Field(
        "objective",
        "valid",
        "valid, or train_last (the released code's).",
    ),
    Field("first_order", False, "First-order meta-gradient."),
    Field(
        "rematerialize",
        False,
        "Recompute inner steps in the backward pass: less memory.",
    ),
    # localgrad/search/fused_batch_norm.py.
    Field(
        "fused_batch_norm",
        True,
        "BatchNorm by the fused kernel: same result, less memory.",
    ),
    # False runs plain TensorFlow graphs, much faster on CPU
    # (bench/search_cost.py).
    Field("jit", True, "XLA (for GPUs/TPUs)."),
    # localgrad/search/graph_rewrites.py.
    Field(
        "graph_rewrites",
        True,
        "Grappler's rewrites; False starts sooner, for more memory.",
    ),
    Field("seed", 0, "The seed of weights and data order."),
    Field("log_every", 10, "Meta-iterations between log lines, summaries."),
    Field(
        "checkpoint_every",
        None,
        "Meta-iterations between checkpoints (None: log_every).",
        int,
    ),
)
