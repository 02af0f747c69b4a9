"""Decoupling files from searched weights, and SEDONA's published ones.

`decoupling_from_weights` turns softmax(alpha) and softmax(beta) found by
any search (the SEDONA authors', or one run elsewhere) into the decoupling
file that training reads. localgrad ships the decouplings the SEDONA
authors searched on CIFAR-10 for VGG-19 and ResNet-50/101/152 (released
with their code: github.com/mjpyeon/sedona, `sedona_outputs/`, commit
d769bf9), so that the paper can be reproduced without running its search:

    localgrad-train --config=paper/cifar10_vgg19:sedona \
        --config.num_blocks=4 --workdir=/tmp/vgg19_sedona

Each shipped file records its provenance and the official code's K = 2, 4
and 8 decouplings in its `search` facts; localgrad's discretization of the
weights gives exactly those (tests/search_published_test.py).
"""

import os
from collections.abc import Sequence

import numpy as np

from localgrad.errors import UserError
from localgrad.search import Decoupling, make_decoupling, read_decoupling
from localgrad.search.supernet import DEFAULT_HEADS

PUBLISHED_DIRECTORY = os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "published_decouplings"
)
# (data set, architecture) pairs with a published decoupling.
PUBLISHED = (
    ("cifar10", "vgg19"),
    ("cifar10", "resnet50"),
    ("cifar10", "resnet101"),
    ("cifar10", "resnet152"),
)
# The authors' light heads end in a 1x1 conv to 512 * feat_mult channels,
# feat_mult = 1 in their released configuration: localgrad's width 1.0.
PUBLISHED_HEAD_WIDTH = 1.0


def decoupling_from_weights(
    network,
    alpha_softmax,
    beta_softmax,
    candidate_heads: Sequence[str] = DEFAULT_HEADS,
    search: dict | None = None,
) -> Decoupling:
    """A decoupling file's contents from searched weights, for `network`.

    The decouplings for every K are localgrad's discretization (methods.md
    §3): boundaries after the K - 1 units with the largest a_l0, each with
    the head of largest b_l. Write the result with
    `localgrad.search.write_decoupling` and train from it with
    `GreedyModel.from_decoupling` or `--config.decoupling=`.

    Example:

    ```python
    net = localgrad.models.build("vgg19", (32, 32, 3), 10)
    found = localgrad.search.decoupling_from_weights(
        net, alpha_softmax, beta_softmax,
        search={"source": "my search", "head_width": 1.0})
    localgrad.search.write_decoupling("/tmp/vgg19.json", found)
    found.decoupling(4)  # ([6, 13, 14], ['light4', 'light1', 'light1'])
    ```

    Args:
        network: The `localgrad.Network` the weights were searched on; its
            architecture and unit names go in the file.
        alpha_softmax: `(L - 1, 2)` probabilities, one row per non-last
            unit; column 0 is the local-signal weight a_l0.
        beta_softmax: `(L - 1, M)` probabilities over the candidate heads.
        candidate_heads: The M head names, column by column (default
            `light1`..`light4`, SEDONA's candidates).
        search: Facts recorded with the file (provenance; `head_width`,
            the width the heads were searched at, is used by training).

    Returns:
        A `localgrad.search.Decoupling`.

    Raises:
        ValueError: if the shapes do not match the network and the heads,
            or a row is not a probability distribution (raw weights: take
            their softmax first).
    """
    alpha = np.asarray(alpha_softmax, dtype=np.float64)
    beta = np.asarray(beta_softmax, dtype=np.float64)
    heads = list(candidate_heads)
    rows = network.num_units - 1
    if alpha.shape != (rows, 2):
        raise UserError(
            f"alpha_softmax has shape {alpha.shape}; {network.architecture!r} "
            f"has {network.num_units} units, so it needs ({rows}, 2): one "
            "row per non-last unit. Check that the weights were searched on "
            "this network (same model and unit count)."
        )
    if beta.shape != (rows, len(heads)):
        raise UserError(
            f"beta_softmax has shape {beta.shape}; it needs ({rows}, "
            f"{len(heads)}): one row per non-last unit and one column per "
            f"candidate head {heads}."
        )
    for name, probabilities in (("alpha", alpha), ("beta", beta)):
        if (
            not np.all(np.isfinite(probabilities))
            or np.any(probabilities < 0)
            or not np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-4)
        ):
            raise UserError(
                f"Every row of {name}_softmax must be a probability "
                "distribution (non-negative, summing to 1). For raw "
                f"decision variables, pass softmax({name}) "
                "(localgrad.search.discretize also takes raw weights)."
            )
    return make_decoupling(
        network.architecture,
        network.unit_names,
        heads,
        alpha,
        beta,
        search=search,
    )


def published_decoupling_path(
    architecture: str, dataset: str = "cifar10"
) -> str:
    """The shipped decoupling file SEDONA's authors searched.

    Example:

    ```python
    path = localgrad.search.published_decoupling_path("vgg19")
    model = localgrad.GreedyModel.from_decoupling(net, path, num_blocks=4)
    ```

    Args:
        architecture: `"vgg19"`, `"resnet50"`, `"resnet101"` or
            `"resnet152"`.
        dataset: The data set searched on; `"cifar10"`.

    Returns:
        The path of the decoupling file in the installed package.

    Raises:
        ValueError: for a pair without a published decoupling.
    """
    if (dataset, architecture) not in PUBLISHED:
        listed = ", ".join(f"{d}/{a}" for d, a in PUBLISHED)
        raise UserError(
            f"No published SEDONA decoupling for {architecture!r} on "
            f"{dataset!r}; published: {listed}. Search it yourself with "
            "localgrad-search."
        )
    return os.path.join(PUBLISHED_DIRECTORY, f"{dataset}_{architecture}.json")


def published_decoupling(
    architecture: str, dataset: str = "cifar10", network=None
) -> Decoupling:
    """Reads a shipped SEDONA decoupling (checked against `network`).

    Example:

    ```python
    found = localgrad.search.published_decoupling("resnet152")
    found.decoupling(4)  # ([11, 13, 17], ['light4', 'light4', 'light4'])
    found.search["official_decouplings"]["4"]  # the same, as released
    ```

    Raises:
        ValueError: for a pair without a published decoupling, or a
            network that is not the one searched.
    """
    return read_decoupling(
        published_decoupling_path(architecture, dataset), network
    )
