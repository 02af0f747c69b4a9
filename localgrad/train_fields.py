"""Every training config field: its default and what it is, in one line.

`localgrad.train_config.default_config()` is built from `FIELDS`, and
`localgrad-train --show_config` prints them next to a config's values. The
comments above a group of fields say how the fields work together; each
field's doc says what it is. The checks are in `localgrad.train_config`.

Example:

```python
{field.name: field.doc for field in FIELDS}["num_blocks"]
# "K: the number of blocks; 1 for backprop."
```
"""

from localgrad.config_fields import Field

FIELDS = (
    # The network.
    Field("model", "vgg11", "The network: a name of localgrad.models."),
    Field("width", 0.25, "The network's width multiplier."),
    # The data: a name of `localgrad.data.DATASET_NAMES`.
    Field("dataset", "fashion_mnist", "The data set: a localgrad.data name."),
    Field(
        "data_dir", None, "Where the data set's files are (None: default).", str
    ),
    Field("batch_size", 128, "Training batch size."),
    Field("eval_batch_size", 500, "Evaluation batch size."),
    Field("augment", True, "The data set's standard augmentation, if any."),
    Field(
        "validation_fraction",
        0.0,
        "Fraction of train held out and evaluated every epoch.",
    ),
    # The method.
    Field(
        "method",
        "dgl",
        "backprop (one block, end to end), dgl, predsim or associated.",
    ),
    Field("num_blocks", 4, "K: the number of blocks; 1 for backprop."),
    Field("boundaries", (), "Explicit: the units after which a block ends."),
    Field("heads", None, "Auxiliary heads (None: the method's own).", str),
    # None (unset): 1.0, or with `decoupling` the width the search used; a
    # value set here always wins.
    Field("head_width", None, "The heads' width multiplier.", float),
    Field(
        "balance", None, "Choose boundaries by memory or compute (None).", str
    ),
    Field(
        "decoupling",
        None,
        "A decoupling.json: its K-block boundaries (and heads, for DGL).",
        str,
    ),
    # Associated Learning (method "associated").
    Field("label_width", None, "AL: the width n of the label codes.", int),
    Field(
        "decoder_learning_rate_factor",
        2.0,
        "AL: the label side's (g_i, h_i) learning rate over the rest's.",
    ),
    # Which blocks train when: parallel, sequential or multilap; pipelined
    # (every block at every step, all at once, each on its device); or
    # async (asynchronous DGL through replay buffers). The sequential
    # schedules train block k for e1 + k * e2 epochs (over `laps` laps for
    # multilap), so `epochs` must be their sum over the K blocks (Karkar et
    # al.: e1 = 50, e2 = 10).
    Field(
        "schedule",
        "parallel",
        "parallel, sequential, multilap, pipelined or async.",
    ),
    Field("laps", 1, "multilap: the number of laps over the blocks."),
    Field("e1", 1.0, "Sequential schedules: epochs of block 0."),
    Field("e2", 0.0, "Sequential schedules: epochs each deeper block adds."),
    # Transport regularization (Karkar et al.): each block's local loss
    # adds its transport term, weighted by a fixed step, 1 / (2 tau) (tau
    # halved for the first half of the blocks with transport_varying), or
    # by the adaptive Uzawa multiplier 1 / lambda_k (lambda_k raised by
    # uzawa_step times the block's loss every uzawa_every steps, 50 if
    # unset). Set transport_tau or uzawa_step, not both; neither: no term.
    Field(
        "transport_tau",
        None,
        "Transport term weighted 1 / (2 tau) (None: none).",
        float,
    ),
    Field(
        "transport_varying",
        False,
        "Halve tau for the first half of the blocks.",
    ),
    Field(
        "uzawa_step",
        None,
        "Transport by the adaptive Uzawa multiplier: its step.",
        float,
    ),
    Field("uzawa_every", None, "Steps between Uzawa updates (None: 50).", int),
    # On the command line: "--config.devices=('/gpu:0','/gpu:1')". Fewer
    # devices than blocks: consecutive blocks share one.
    Field("devices", (), "Block k on devices[k] (empty: the default)."),
    # schedule="async" (asynchronous DGL). `epochs` is then every block's
    # own epochs; fit runs until all have trained them.
    Field("buffer_size", 30, "async: batches in each replay buffer."),
    Field(
        "sampling",
        "priority_lifo",
        "async: how buffers are read: priority_lifo, fifo or uniform.",
    ),
    Field(
        "max_reuse",
        None,
        "async: reads after which a batch is dropped (None: never).",
        int,
    ),
    Field("slowdown", "", "async: slowed blocks as 'block:factor,...'."),
    # Several machines: each runs `localgrad-worker --cluster=... --task=k`;
    # block k lives on task k (unless `devices` names worker devices,
    # /job:worker/...). A worker silent for `cluster_timeout` seconds, at
    # the start or during the run, ends the run, named.
    Field(
        "cluster",
        None,
        "The workers' host:port, in task order (None: this machine).",
        str,
    ),
    Field("cluster_timeout", 60.0, "Seconds within which workers answer."),
    # Optimization; each block gets its own copy of the optimizer.
    Field("optimizer", "sgd", "sgd or adam."),
    Field("learning_rate", 0.1, "The (peak) learning rate."),
    Field("momentum", 0.9, "SGD momentum."),
    Field("nesterov", False, "Nesterov momentum (SGD)."),
    Field("weight_decay", 5e-4, "The optimizer's (decoupled) weight decay."),
    Field("lr_schedule", "cosine", "constant, cosine or step."),
    Field("warmup_epochs", 0.0, "Linear learning-rate warm-up (cosine)."),
    Field("lr_decay_epochs", (), "step: epochs at which lr is multiplied."),
    Field("lr_decay_factor", 0.1, "step: the factor applied at each."),
    Field("lr_decay_factors", (), "step: or one factor per epoch listed."),
    Field("label_smoothing", 0.0, "Label smoothing of the cross-entropy."),
    # Precise BatchNorm (GreedyModel's precise_batch_norm): before each
    # validation and at the end, weights frozen.
    Field(
        "precise_bn_batches",
        50,
        "BatchNorm statistics re-estimated on this many batches, at most "
        "an epoch's (0: off).",
    ),
    # The run.
    Field("epochs", 10, "Epochs to train."),
    Field("steps_per_epoch", None, "Steps per epoch (None: one pass).", int),
    Field("seed", 0, "The seed of weights and data order."),
    Field("jit", False, "Compile the steps with XLA."),
    Field(
        "mixed_precision",
        "float32",
        "float32, mixed_float16 or mixed_bfloat16.",
    ),
    Field("steps_per_execution", 1, "Steps per call of the train function."),
    # Cheap for in-memory data; turn off for ImageNet-sized data (the
    # resumed run then starts the data order over).
    Field(
        "replay_data_on_resume",
        True,
        "On resume, read past the finished epochs' batches.",
    ),
    Field("keep_checkpoints", 2, "Checkpoints kept in the work directory."),
    Field(
        "restart",
        False,
        "Start over at epoch 0; the old checkpoints are moved aside.",
    ),
)
