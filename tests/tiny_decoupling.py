"""A decoupling file for the tests' tiny VGG-11 (8x8x1, width 0.125)."""

import numpy as np

import localgrad
from localgrad.search import make_decoupling, write_decoupling


def write_tiny_decoupling(path, search=None):
    """Writes a decoupling that cuts after units 1 and 4 with `linear` heads.

    Example:

    ```python
    write_tiny_decoupling(str(tmp_path / "decoupling.json"))
    ```

    Args:
        path: Where to write the file.
        search: Facts recorded with it (e.g. `{"head_width": 0.5}`).
    """
    network = localgrad.models.build("vgg11", (8, 8, 1), 10, width=0.125)
    alpha = np.tile([0.5, 0.5], (network.num_units - 1, 1))
    alpha[0], alpha[3] = [0.9, 0.1], [0.8, 0.2]  # Units 1 and 4: local.
    beta = np.tile([0.2, 0.8], (network.num_units - 1, 1))  # "linear".
    write_decoupling(
        path,
        make_decoupling(
            network.architecture,
            network.unit_names,
            ["mlp_sr", "linear"],
            alpha,
            beta,
            search=search,
        ),
    )
