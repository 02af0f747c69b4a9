"""Runs a SEDONA search as a config describes (what `localgrad-search` calls).

Work directory layout:

    {workdir}/.lock                held while the search runs (one at a time)
    {workdir}/config.json          the resolved config
    {workdir}/checkpoint/          weight memory, alpha, beta, Adam, counters
    {workdir}/tensorboard/         scalars and alpha/beta images
    {workdir}/decoupling.json      the artefact localgrad-train reads
    {workdir}/alpha_beta.png       softmax(alpha) and softmax(beta) per unit
    {workdir}/search_history.json  objective and time per logged iteration

Started again with the same command after an interruption, the search
resumes from its last checkpoint.
"""

import os

import keras
from absl import logging

from localgrad import data as data_lib
from localgrad import models
from localgrad.search.graph_rewrites import graph_rewrites
from localgrad.search.result import SearchResult
from localgrad.search.search import Search
from localgrad.search.search_config import check_search_config
from localgrad.workdir_lock import WorkdirLock


def run(config, workdir: str) -> SearchResult:
    """Searches the decoupling of `config.model` on `config.dataset`.

    Example:

    ```python
    from localgrad.search import search_config, search_lib
    config = search_config.default_search_config()
    result = search_lib.run(config, "/tmp/search")
    ```

    Args:
        config: A `ConfigDict` with the fields of
            `localgrad.search.search_config.default_search_config()`.
        workdir: The work directory (created if needed).

    Returns:
        The `SearchResult`; `{workdir}/decoupling.json` holds it for
        training.

    Raises:
        ValueError: for a bad config or data that are not there.
        WorkdirInUseError: if another run is using `workdir` now.
        NotADirectoryError: if `workdir` is a file.
    """
    check_search_config(config)
    with WorkdirLock(workdir):
        return _run(config, workdir)


def _run(config, workdir):
    """`run` once the workdir is this search's alone."""
    with open(os.path.join(workdir, "config.json"), "w") as file:
        file.write(config.to_json_best_effort(indent=1))
    keras.utils.set_random_seed(config.seed)
    info = data_lib.info(config.dataset)
    x, y = data_lib.load_arrays(
        config.dataset, "train", data_dir=config.data_dir
    )
    if config.max_train_examples is not None:
        x, y = x[: config.max_train_examples], y[: config.max_train_examples]
    network = models.build(
        config.model, info.input_shape, info.num_classes, width=config.width
    )
    heads = config.heads
    if isinstance(heads, str):
        heads = [h for h in heads.split(",") if h]
    search = Search(
        network,
        heads=list(heads),
        head_width=config.head_width,
        batch_size=config.batch_size,
        validation_fraction=config.validation_fraction,
        warmup_steps=config.warmup_steps,
        memory_size=config.memory_size,
        learning_rate=config.learning_rate,
        final_learning_rate=config.final_learning_rate,
        momentum=config.momentum,
        weight_decay=config.weight_decay,
        label_smoothing=config.label_smoothing,
        meta_iterations=config.meta_iterations,
        inner_steps=config.inner_steps,
        meta_learning_rate=config.meta_learning_rate,
        meta_beta_1=config.meta_beta_1,
        meta_beta_2=config.meta_beta_2,
        objective=config.objective,
        first_order=config.first_order,
        rematerialize=config.rematerialize,
        fused_batch_norm=config.fused_batch_norm,
        jit_compile=config.jit,
        augment=config.augment and len(info.input_shape) == 3,
        seed=config.seed,
    )
    logging.info(
        "Searching %s (%d units, candidates %s) on %d %s examples.",
        network.architecture,
        network.num_units,
        list(heads),
        len(x),
        config.dataset,
    )
    with graph_rewrites(config.graph_rewrites):
        result = search.run(
            x,
            y,
            workdir=workdir,
            log_every=config.log_every,
            checkpoint_every=config.checkpoint_every,
        )
    for k in sorted({2, 4} & set(range(1, network.num_units + 1))):
        boundaries, heads_k = result.decoupling(k)
        logging.info("K = %d: boundaries %s, heads %s", k, boundaries, heads_k)
    logging.info(
        "Wrote %s; train with --config.decoupling=%s --config.num_blocks=K.",
        os.path.join(workdir, "decoupling.json"),
        os.path.join(workdir, "decoupling.json"),
    )
    return result
