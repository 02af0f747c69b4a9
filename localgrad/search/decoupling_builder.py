"""make_decoupling: a search's weights discretized for every K."""

import dataclasses
from collections.abc import Sequence

import numpy as np

from localgrad.decoupling_file import Decoupling
from localgrad.search.discretize import discretize


def make_decoupling(
    architecture: str,
    unit_names: Sequence[str],
    head_names: Sequence[str],
    alpha_softmax,
    beta_softmax,
    search: dict | None = None,
    network: dict | None = None,
) -> Decoupling:
    """A `Decoupling` with the decouplings of every K computed.

    Example:

    ```python
    found = make_decoupling("vgg19", net.unit_names, result.head_names,
                            result.alpha_softmax, result.beta_softmax)
    ```
    """
    alpha_softmax = np.asarray(alpha_softmax, np.float64)
    beta_softmax = np.asarray(beta_softmax, np.float64)
    partial = Decoupling(
        str(architecture),
        tuple(unit_names),
        tuple(head_names),
        alpha_softmax,
        beta_softmax,
        {},
        dict(search or {}),
        dict(network or {}),
    )
    decouplings = {
        k: discretize(partial, k) for k in range(1, len(unit_names) + 1)
    }
    return dataclasses.replace(partial, decouplings=decouplings)
