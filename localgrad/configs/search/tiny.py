"""A search of a few seconds on scikit-learn's digits, for smoke tests.

    localgrad-search --config=search/tiny --workdir=/tmp/tiny

A 4-unit MLP at 3 % width with `linear` and `mlp` candidate heads (the
light heads need feature maps); 20 warm-up steps, 4 snapshots, 4
meta-iterations of T = 2, no XLA. Not a meaningful search: it checks that
the pipeline runs and writes its artefacts.
"""

from localgrad.search.search_config import default_search_config


def get_config():
    config = default_search_config()
    config.model = "mlp"
    config.width = 0.03
    config.dataset = "digits"
    config.augment = False
    config.batch_size = 32
    config.heads = ("linear", "mlp")
    config.warmup_steps = 20
    config.memory_size = 4
    config.meta_iterations = 4
    config.inner_steps = 2
    config.jit = False
    config.log_every = 2
    return config
