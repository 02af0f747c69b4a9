import itertools

import numpy as np
import pytest

from localgrad import boundaries


def test_block_ranges_cover_every_unit_once():
    ranges = boundaries.block_ranges([5, 12, 13], 16)
    assert ranges == [(0, 5), (5, 12), (12, 13), (13, 16)]


@pytest.mark.parametrize(
    "num_units, num_blocks, expected",
    [
        (16, 4, [4, 8, 12]),
        (16, 1, []),
        (5, 5, [1, 2, 3, 4]),
        (33, 4, [8, 16, 25]),
    ],
)
def test_uniform_boundaries(num_units, num_blocks, expected):
    assert boundaries.uniform_boundaries(num_units, num_blocks) == expected


@pytest.mark.parametrize(
    "bad, message",
    [
        ([16], "out of range"),
        ([0, 3], "out of range"),
        ([5, 3], "strictly increasing"),
        ([3, 3], "strictly increasing"),
        ([2.5], "not an integer"),
    ],
)
def test_validate_boundaries_rejects_bad_input(bad, message):
    with pytest.raises(ValueError, match=message):
        boundaries.validate_boundaries(bad, num_units=16)


@pytest.mark.parametrize("num_blocks", [0, 17])
def test_more_blocks_than_units_is_refused(num_blocks):
    with pytest.raises(ValueError, match="can be split into 1..16 blocks"):
        boundaries.uniform_boundaries(16, num_blocks)
    with pytest.raises(ValueError, match="can be split into 1..16 blocks"):
        boundaries.balanced_boundaries([1.0] * 16, num_blocks)


def _largest_block(costs, cuts):
    edges = [0] + list(cuts) + [len(costs)]
    return max(sum(costs[a:b]) for a, b in zip(edges[:-1], edges[1:]))


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("num_blocks", [2, 3, 4])
def test_balanced_boundaries_minimise_the_largest_block(seed, num_blocks):
    costs = list(np.random.default_rng(seed).integers(1, 100, size=9))
    found = boundaries.balanced_boundaries(costs, num_blocks)
    best = min(
        _largest_block(costs, cuts)
        for cuts in itertools.combinations(range(1, 9), num_blocks - 1)
    )
    assert len(found) == num_blocks - 1
    assert found == sorted(set(found))
    assert _largest_block(costs, found) == best


def test_balanced_split_of_front_heavy_costs_puts_few_units_first():
    # VGG-like: the first units hold most activations.
    costs = [64, 64, 16, 16, 4, 4, 4, 4, 1, 1, 1, 1]
    found = boundaries.balanced_boundaries(costs, 3)
    assert found[0] == 1
    assert _largest_block(costs, found) == 64
