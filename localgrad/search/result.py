"""What a search returns: the decision variables and how they got there."""

import dataclasses
import json
import os

import numpy as np

from localgrad.decoupling_file import Decoupling, write_decoupling
from localgrad.search.decoupling_builder import make_decoupling
from localgrad.search.discretize import discretize, softmax
from localgrad.search.plots import save_alpha_beta_plot


@dataclasses.dataclass
class SearchResult:
    """The searched (alpha, beta) of a network, and the search's history.

    Example:

    ```python
    result = search.run(x, y)
    result.alpha_softmax[:, 0]      # a_l0 of every non-last unit
    result.decoupling(4)            # ([3, 7, 12], ['light2', ...])
    result.to_decoupling()          # what decoupling.json holds
    ```

    Attributes:
        alpha: Raw `(L - 1, 2)` decision variables.
        beta: Raw `(L - 1, M)` decision variables.
        head_names: The M candidate heads.
        architecture: The network's architecture name.
        unit_names: The network's L unit names.
        history: One dict per logged meta-iteration (`meta_iteration`,
            `objective`, `seconds_per_iteration`).
        settings: The search's settings, recorded in the artefact.
        network: The searched network's input shape and parameters per
            unit (`localgrad.decoupling_file.network_facts`).
    """

    alpha: np.ndarray
    beta: np.ndarray
    head_names: tuple
    architecture: str
    unit_names: tuple
    history: list = dataclasses.field(default_factory=list)
    settings: dict = dataclasses.field(default_factory=dict)
    network: dict = dataclasses.field(default_factory=dict)

    @property
    def alpha_softmax(self) -> np.ndarray:
        """softmax(alpha) per unit; column 0 is a_l0 (local signal)."""
        return softmax(self.alpha)

    @property
    def beta_softmax(self) -> np.ndarray:
        """softmax(beta) per unit: the weights of the candidate heads."""
        return softmax(self.beta)

    def decoupling(self, num_blocks: int) -> tuple[list[int], list[str]]:
        """`(boundaries, heads)` for K blocks; see `discretize`."""
        return discretize(self, num_blocks)

    def to_decoupling(self) -> Decoupling:
        """The artefact's contents (every K from 1 to L)."""
        return make_decoupling(
            self.architecture,
            self.unit_names,
            self.head_names,
            self.alpha_softmax,
            self.beta_softmax,
            search=self.settings,
            network=self.network,
        )

    def write_artefacts(self, workdir: str) -> None:
        """Writes `decoupling.json`, `alpha_beta.png` and
        `search_history.json` into `workdir`.

        Example:

        ```python
        result.write_artefacts("/tmp/search")
        ```
        """
        os.makedirs(workdir, exist_ok=True)
        write_decoupling(os.path.join(workdir, "decoupling.json"), self)
        done = self.settings.get("meta_iterations_done", "?")
        save_alpha_beta_plot(
            os.path.join(workdir, "alpha_beta.png"),
            self,
            f"{self.architecture}: {done} meta-iterations",
        )
        path = os.path.join(workdir, "search_history.json")
        with open(path, "w") as file:
            json.dump(self.history, file, indent=1)
