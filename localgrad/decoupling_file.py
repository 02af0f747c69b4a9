"""`decoupling.json`: what a search found, in the form training reads.

A leaf module: `GreedyModel.from_decoupling` reads these files and
`localgrad.search` writes them; neither needs the other. (Discretizing a
search into the decouplings of every K, `make_decoupling`, is the search's
part.)

The file holds the network it was searched on (architecture, unit names,
unit count and, since localgrad writes them, the input shape and every
unit's parameter count, which tell its width), softmax(alpha) and
softmax(beta) of every non-last unit, the candidate head names, and the
decoupling for every K from 1 to L. It is versioned and checked on load,
so a corrupt file or one searched on another network (another width or
input shape included) fails with a message that says what to do.
"""

import dataclasses
import json
import math
import os

import numpy as np

from localgrad.errors import UserError

FORMAT = "localgrad.decoupling"
VERSION = 1
_KEYS = (
    "format",
    "version",
    "architecture",
    "num_units",
    "unit_names",
    "candidate_heads",
    "alpha_softmax",
    "beta_softmax",
    "decouplings",
)


@dataclasses.dataclass(frozen=True)
class Decoupling:
    """The contents of a `decoupling.json`.

    Example:

    ```python
    found = read_decoupling("/tmp/search/decoupling.json", network)
    boundaries, heads = found.decoupling(num_blocks=4)
    ```

    Attributes:
        architecture: The network's architecture name.
        unit_names: The network's unit names, in order.
        head_names: The M candidate heads.
        alpha_softmax: `(L - 1, 2)` array; column 0 is the local-signal
            weight a_l0.
        beta_softmax: `(L - 1, M)` array of head weights.
        decouplings: `{K: (boundaries, heads)}` for K = 1..L.
        search: Free-form facts about the search (settings, objective).
        network: The searched network's `network_facts` (input shape,
            parameters per unit); empty in files that do not record them
            (SEDONA's published decouplings, older files).
    """

    architecture: str
    unit_names: tuple
    head_names: tuple
    alpha_softmax: np.ndarray
    beta_softmax: np.ndarray
    decouplings: dict
    search: dict = dataclasses.field(default_factory=dict)
    network: dict = dataclasses.field(default_factory=dict)

    @property
    def num_units(self) -> int:
        """The network's number of units L."""
        return len(self.unit_names)

    def decoupling(self, num_blocks: int) -> tuple[list[int], list[str]]:
        """`(boundaries, heads)` of the K-block decoupling.

        Raises:
            ValueError: if K is not in 1..L.
        """
        if num_blocks not in self.decouplings:
            raise UserError(
                f"num_blocks={num_blocks!r} is out of range: this search "
                f"covers K = 1..{self.num_units} for "
                f"{self.architecture!r} ({self.num_units} units)."
            )
        boundaries, heads = self.decouplings[num_blocks]
        return list(boundaries), list(heads)


def write_decoupling(path: str, found) -> None:
    """Writes `found` (a `SearchResult` or `Decoupling`) to `path`.

    The file is written next to `path` first and then moved into place, so
    a reader never sees half a file.

    Example:

    ```python
    write_decoupling("/tmp/search/decoupling.json", result)
    ```
    """
    if not isinstance(found, Decoupling):
        found = found.to_decoupling()
    content = {
        "format": FORMAT,
        "version": VERSION,
        "architecture": found.architecture,
        "num_units": found.num_units,
        "unit_names": list(found.unit_names),
        "candidate_heads": list(found.head_names),
        "alpha_softmax": found.alpha_softmax.tolist(),
        "beta_softmax": found.beta_softmax.tolist(),
        "decouplings": {
            str(k): {"boundaries": list(b), "heads": list(h)}
            for k, (b, h) in sorted(found.decouplings.items())
        },
        "search": found.search,
    }
    if found.network:
        content["network"] = found.network
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    temporary = path + ".tmp"
    with open(temporary, "w") as file:
        json.dump(content, file, indent=1)
    os.replace(temporary, path)


def read_decoupling(path: str, network=None) -> Decoupling:
    """Reads and checks a `decoupling.json`.

    Example:

    ```python
    found = read_decoupling("/tmp/search/decoupling.json", network)
    found.decoupling(4)  # ([3, 7, 12], ['light2', 'light1', 'light1'])
    ```

    Args:
        path: The file a search wrote.
        network: If given, the `localgrad.Network` the decoupling is for:
            its architecture, unit count and unit names must match, and so
            must its input shape and parameters per unit where the file
            records them (another width or input is refused).

    Returns:
        A `Decoupling`.

    Raises:
        ValueError: if the file is missing, not JSON, of another format or
            version, lacks a key, has inconsistent shapes, or was searched
            on another network; the message says how to fix it.
    """
    fix = f"Re-run the search (localgrad-search) to write {path} again."
    try:
        with open(path) as file:
            content = json.load(file)
    except FileNotFoundError as error:
        raise UserError(
            f"No decoupling file at {path}: run localgrad-search with "
            "--workdir=<dir> first and pass <dir>/decoupling.json."
        ) from error
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise UserError(
            f"{path} is not valid JSON ({error}); the file is corrupt. {fix}"
        ) from error
    if not isinstance(content, dict) or content.get("format") != FORMAT:
        raise UserError(
            f"{path} is not a localgrad decoupling file (its 'format' is "
            f"not {FORMAT!r}). Pass the decoupling.json a search wrote."
        )
    if content.get("version") != VERSION:
        raise UserError(
            f"{path} has format version {content.get('version')!r}; this "
            f"localgrad reads version {VERSION}. {fix}"
        )
    missing = [key for key in _KEYS if key not in content]
    if missing:
        raise UserError(f"{path} lacks the keys {missing}. {fix}")
    found = _parse(content, path, fix)
    if network is not None:
        _check_network(found, network, path)
    return found


def _parse(content, path, fix) -> Decoupling:
    def bad(what):
        return ValueError(f"{path}: {what}. {fix}")

    num_units = content["num_units"]
    names = content["unit_names"]
    heads = content["candidate_heads"]
    if not isinstance(num_units, int) or num_units < 2:
        raise bad(f"num_units={num_units!r} must be an integer >= 2")
    if not _strings(names) or len(names) != num_units:
        raise bad(
            f"unit_names must be {num_units} strings (num_units); got {names!r}"
        )
    if not _strings(heads) or not heads:
        raise bad(f"candidate_heads must be a list of names; got {heads!r}")
    alpha = _matrix(content["alpha_softmax"], (num_units - 1, 2))
    beta = _matrix(content["beta_softmax"], (num_units - 1, len(heads)))
    if alpha is None:
        raise bad(
            f"alpha_softmax must be a {num_units - 1} x 2 array of finite "
            "numbers (one row per non-last unit)"
        )
    if beta is None:
        raise bad(
            f"beta_softmax must be a {num_units - 1} x {len(heads)} array "
            "of finite numbers (one row per non-last unit, one column per "
            "candidate head)"
        )
    raw = content["decouplings"]
    if not isinstance(raw, dict):
        raise bad("decouplings must map K to {boundaries, heads}")
    decouplings = {}
    for k in range(1, num_units + 1):
        entry = raw.get(str(k))
        if not isinstance(entry, dict) or not {"boundaries", "heads"} <= set(
            entry
        ):
            raise bad(f"decouplings lacks K = {k} (every K in 1..{num_units})")
        boundaries, chosen = entry["boundaries"], entry["heads"]
        valid = (
            isinstance(boundaries, list)
            and len(boundaries) == k - 1
            and all(isinstance(b, int) for b in boundaries)
            and boundaries == sorted(set(boundaries))
            and all(1 <= b <= num_units - 1 for b in boundaries)
            and _strings(chosen)
            and len(chosen) == k - 1
            and all(h in heads for h in chosen)
        )
        if not valid:
            raise bad(
                f"the decoupling for K = {k} must have {k - 1} increasing "
                f"boundaries in 1..{num_units - 1} and {k - 1} heads among "
                f"{heads}; got {entry!r}"
            )
        decouplings[k] = (list(boundaries), list(chosen))
    search = content.get("search") or {}
    network = content.get("network") or {}
    if not isinstance(network, dict) or not all(
        isinstance(network.get(key, []), list)
        for key in ("input_shape", "unit_parameters")
    ):
        raise bad(f"network must hold lists; got {network!r}")
    return Decoupling(
        str(content["architecture"]),
        tuple(names),
        tuple(heads),
        alpha,
        beta,
        decouplings,
        dict(search) if isinstance(search, dict) else {},
        dict(network),
    )


def network_facts(network) -> dict:
    """What a decoupling file records of a built `localgrad.Network`.

    Example:

    ```python
    network_facts(localgrad.models.build("vgg11", (8, 8, 1), 10, 0.125))
    # {"input_shape": [8, 8, 1], "unit_parameters": [104, 1216, ...]}
    ```
    """
    return {
        "input_shape": [int(side) for side in network.example_shape],
        "unit_parameters": [int(unit.count_params()) for unit in network.units],
    }


def _check_network(found, network, path):
    mine = (network.architecture, network.num_units)
    theirs = (found.architecture, found.num_units)
    if mine != theirs or list(network.unit_names) != list(found.unit_names):
        raise UserError(
            f"{path} was searched on {found.architecture!r} with "
            f"{found.num_units} units {list(found.unit_names)}, but the "
            f"network is {network.architecture!r} with {network.num_units} "
            f"units {list(network.unit_names)}. Search this network "
            "(localgrad-search with its model and width) or build the network "
            "the file was searched on."
        )
    facts = network_facts(network)
    for key, what in (
        ("input_shape", "input shape"),
        ("unit_parameters", "parameters per unit (its width)"),
    ):
        if key in found.network and found.network[key] != facts[key]:
            raise UserError(
                f"{path} was searched on a {found.architecture} with "
                f"{what} {found.network[key]}, but this network's are "
                f"{facts[key]}: search it at this width and input shape, "
                "or build the network the search used."
            )


def _strings(values) -> bool:
    return isinstance(values, list) and all(isinstance(v, str) for v in values)


def _matrix(values, shape):
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        return None
    if array.shape != shape or not all(math.isfinite(v) for v in array.flat):
        return None
    return array
