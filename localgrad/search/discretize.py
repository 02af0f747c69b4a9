"""From the searched (alpha, beta) to a decoupling with K blocks."""

from collections.abc import Sequence

import numpy as np

from localgrad.errors import UserError
from localgrad.search.supernet import DEFAULT_HEADS


def softmax(values) -> np.ndarray:
    """Row-wise softmax of a 2-D array, in float64."""
    values = np.asarray(values, dtype=np.float64)
    shifted = np.exp(values - values.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def discretize(
    result_or_alpha_beta,
    num_blocks: int,
    head_names: Sequence[str] | None = None,
) -> tuple[list[int], list[str]]:
    """The K-block decoupling of a search (methods.md §3).

    The boundaries are the K - 1 non-last units with the largest local-signal
    weight a_l0 = softmax(alpha_l)[0] (ties go to the earlier unit); the head
    at a boundary is the candidate with the largest b_l = softmax(beta_l)
    (ties to the earlier candidate). Boundary b means "a block ends after
    unit b" (units counted from 1): non-last unit index i gives b = i + 1.
    One search serves every K.

    Example:

    ```python
    boundaries, heads = discretize(result, num_blocks=4)
    # e.g. [3, 7, 12], ['light2', 'light1', 'light1']
    model = localgrad.GreedyModel(net, boundaries=boundaries, heads=heads)
    ```

    Args:
        result_or_alpha_beta: A `SearchResult` or `Decoupling` (anything
            with `alpha_softmax`, `beta_softmax` and `head_names`), or a
            pair `(alpha, beta)` of raw decision variables of shapes
            `(L - 1, 2)` and `(L - 1, M)`.
        num_blocks: K, in 1..L.
        head_names: The M candidate names, for a raw pair (default
            `light1`..`light4` when M = 4).

    Returns:
        `(boundaries, heads)`: K - 1 increasing ints in 1..L-1 and the
        K - 1 head names.

    Raises:
        ValueError: for bad shapes, a K outside 1..L, or missing head names.
    """
    alpha_probs, beta_probs, names = _probabilities(
        result_or_alpha_beta, head_names
    )
    num_units = alpha_probs.shape[0] + 1
    if (
        isinstance(num_blocks, bool)
        or int(num_blocks) != num_blocks
        or not 1 <= num_blocks <= num_units
    ):
        raise UserError(
            f"num_blocks={num_blocks!r} is out of range: a network of "
            f"{num_units} units splits into 1..{num_units} blocks."
        )
    local = alpha_probs[:, 0]
    # Largest a_l0 first; among equals, the earlier unit first.
    order = sorted(range(len(local)), key=lambda i: (-local[i], i))
    chosen = sorted(order[: int(num_blocks) - 1])
    boundaries = [i + 1 for i in chosen]
    heads = [names[int(np.argmax(beta_probs[i]))] for i in chosen]
    return boundaries, heads


def _probabilities(source, head_names):
    if all(
        hasattr(source, name)
        for name in ("alpha_softmax", "beta_softmax", "head_names")
    ):
        alpha_probs = np.asarray(source.alpha_softmax, np.float64)
        beta_probs = np.asarray(source.beta_softmax, np.float64)
        names = list(head_names or source.head_names)
    elif isinstance(source, (tuple, list)) and len(source) == 2:
        alpha_probs = softmax(source[0])
        beta_probs = softmax(source[1])
        names = _default_names(head_names, beta_probs)
    else:
        raise UserError(
            "discretize needs a SearchResult, a Decoupling, or a pair "
            f"(alpha, beta) of arrays; got {type(source).__name__}."
        )
    if alpha_probs.ndim != 2 or alpha_probs.shape[1] != 2:
        raise UserError(
            f"alpha must have shape (L - 1, 2); got {alpha_probs.shape}."
        )
    if beta_probs.ndim != 2 or beta_probs.shape[0] != alpha_probs.shape[0]:
        raise UserError(
            f"beta must have shape (L - 1, M) = ({alpha_probs.shape[0]}, M) "
            f"to match alpha; got {beta_probs.shape}."
        )
    if len(names) != beta_probs.shape[1]:
        raise UserError(
            f"{len(names)} head names for {beta_probs.shape[1]} candidates "
            "in beta; give one name per column of beta."
        )
    return alpha_probs, beta_probs, names


def _default_names(head_names, beta_probs):
    if head_names is not None:
        return list(head_names)
    if beta_probs.ndim == 2 and beta_probs.shape[1] == len(DEFAULT_HEADS):
        return list(DEFAULT_HEADS)
    raise UserError(
        f"beta has {beta_probs.shape[-1]} candidates, not the 4 default "
        "light heads: pass head_names=[...] (one name per candidate)."
    )
