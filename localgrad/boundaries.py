"""Block boundaries: validation, uniform splits and balanced splits.

A boundary `b` (1 <= b <= L - 1) means "a block ends after unit b" (units
counted from 1), so `boundaries=[5, 12, 13]` over 16 units gives the blocks
units 1-5, 6-12, 13 and 14-16.
"""

from collections.abc import Sequence

from localgrad.errors import UserError


def validate_boundaries(boundaries: Sequence[int], num_units: int) -> list:
    """Checks boundaries against a network of `num_units` units.

    Example:

    ```python
    validate_boundaries([5, 12, 13], num_units=16)  # [5, 12, 13]
    validate_boundaries([16], num_units=16)          # ValueError
    ```

    Args:
        boundaries: Unit counts after which a block ends.
        num_units: The number of units L of the network.

    Returns:
        The boundaries as a list of Python ints.

    Raises:
        ValueError: if a boundary is not an integer in 1..L-1, or the list is
            unsorted or has duplicates.
    """
    result = []
    for boundary in boundaries:
        if isinstance(boundary, bool) or int(boundary) != boundary:
            raise UserError(f"Boundary {boundary!r} is not an integer.")
        result.append(int(boundary))
    for boundary in result:
        if not 1 <= boundary <= num_units - 1:
            raise UserError(
                f"Boundary {boundary} is out of range: with {num_units} units "
                f"a boundary must be in 1..{num_units - 1} (a block ends "
                "after that unit; the last block always ends after the last "
                "unit, so it needs no boundary)."
            )
    if result != sorted(set(result)):
        raise UserError(
            f"Boundaries {result} must be strictly increasing, without "
            f"duplicates; did you mean {sorted(set(result))}?"
        )
    return result


def block_ranges(boundaries: Sequence[int], num_units: int) -> list:
    """The `(start, end)` unit index range of every block (0-based, end open).

    Example:

    ```python
    block_ranges([5, 12, 13], 16)  # [(0, 5), (5, 12), (12, 13), (13, 16)]
    ```
    """
    edges = [0] + list(boundaries) + [num_units]
    return list(zip(edges[:-1], edges[1:]))


def uniform_boundaries(num_units: int, num_blocks: int) -> list:
    """Splits `num_units` units into `num_blocks` blocks of near-equal count.

    Example:

    ```python
    uniform_boundaries(16, 4)  # [4, 8, 12]
    ```

    Raises:
        ValueError: if `num_blocks` is not in 1..num_units.
    """
    _check_num_blocks(num_blocks, num_units)
    return [round(k * num_units / num_blocks) for k in range(1, num_blocks)]


def balanced_boundaries(costs: Sequence[float], num_blocks: int) -> list:
    """Boundaries that make the most expensive block as cheap as possible.

    Splits the sequence of per-unit costs into `num_blocks` contiguous blocks
    minimising the largest block's total cost (ties go to the split whose
    blocks end earliest). With activation bytes as costs this balances
    memory; with FLOPs it balances compute.

    Example:

    ```python
    balanced_boundaries([8, 4, 2, 1, 1], num_blocks=2)  # [1]
    ```

    Args:
        costs: One non-negative cost per unit.
        num_blocks: The number of blocks K.

    Returns:
        K - 1 boundaries.

    Raises:
        ValueError: if `num_blocks` is not in 1..len(costs).
    """
    num_units = len(costs)
    _check_num_blocks(num_blocks, num_units)
    prefix = [0.0]
    for cost in costs:
        prefix.append(prefix[-1] + float(cost))
    # best[k][j]: the smallest largest-block cost splitting units[:j] into k.
    infinity = float("inf")
    best = [[infinity] * (num_units + 1) for _ in range(num_blocks + 1)]
    last_start = [[0] * (num_units + 1) for _ in range(num_blocks + 1)]
    best[0][0] = 0.0
    for k in range(1, num_blocks + 1):
        for end in range(k, num_units + 1):
            for start in range(k - 1, end):
                cost = max(best[k - 1][start], prefix[end] - prefix[start])
                if cost < best[k][end]:
                    best[k][end] = cost
                    last_start[k][end] = start
    boundaries, end = [], num_units
    for k in range(num_blocks, 1, -1):
        end = last_start[k][end]
        boundaries.append(end)
    return sorted(boundaries)


def resolve_boundaries(
    network,
    num_blocks: int | None = None,
    boundaries: Sequence[int] | None = None,
    balance: str | None = None,
    balance_batch_size: int = 128,
) -> list:
    """The boundaries a `GreedyModel`'s arguments ask for.

    Example:

    ```python
    resolve_boundaries(net, num_blocks=4, balance="compute")
    resolve_boundaries(net, boundaries=[5, 12, 13])
    ```

    Args:
        network: The `localgrad.Network` to split.
        num_blocks: K, for an even or balanced split.
        boundaries: Explicit boundaries instead.
        balance: With `num_blocks`: None (equal unit counts), `"memory"`
            (activation bytes at `balance_batch_size` plus gradient bytes)
            or `"compute"` (FLOPs), measured by `localgrad.profile`.
        balance_batch_size: The batch size the memory balance is for.

    Returns:
        K - 1 validated boundaries.

    Raises:
        ValueError: for both or neither of num_blocks and boundaries, bad
            boundaries, or an unknown balance.
    """
    if (num_blocks is None) == (boundaries is None):
        raise UserError(
            "Give exactly one of num_blocks (e.g. num_blocks=4) or "
            "boundaries (e.g. boundaries=[5, 12, 13])."
        )
    if boundaries is not None:
        if balance is not None:
            raise UserError(
                "balance= chooses boundaries; it cannot be combined with "
                "explicit boundaries. Pass num_blocks with balance."
            )
        return validate_boundaries(boundaries, network.num_units)
    if balance is None:
        return uniform_boundaries(network.num_units, num_blocks)
    if balance not in ("memory", "compute"):
        raise UserError(
            f"Unknown balance={balance!r}; use None, 'memory' or 'compute'."
        )
    from localgrad.profile import profile  # Traces the network: only here.

    profiles = profile(network, batch_size=balance_batch_size)
    if balance == "compute":
        unit_costs = [p.flops for p in profiles]
    else:
        unit_costs = [p.activation_bytes + 4 * p.params for p in profiles]
    return balanced_boundaries(unit_costs, num_blocks)


def _check_num_blocks(num_blocks, num_units):
    if not 1 <= num_blocks <= num_units:
        raise UserError(
            f"num_blocks={num_blocks} is out of range: a network with "
            f"{num_units} units can be split into 1..{num_units} blocks."
        )
