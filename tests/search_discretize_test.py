"""Tests of the discretization of (alpha, beta) into a decoupling."""

import numpy as np
import pytest

from localgrad.search import SearchResult, discretize


def _result(local, beta_probs, names=("h0", "h1", "h2")):
    local = np.asarray(local, np.float64)
    # alpha whose softmax has column 0 = local exactly enough to rank.
    alpha = np.stack([np.log(local), np.log(1 - local)], axis=1)
    beta = np.log(np.asarray(beta_probs, np.float64))
    return SearchResult(
        alpha,
        beta,
        tuple(names),
        "net",
        tuple(f"u{i}" for i in range(len(local) + 1)),
    )


BETA = [
    [0.2, 0.5, 0.3],
    [0.6, 0.3, 0.1],
    [0.1, 0.1, 0.8],
    [0.3, 0.3, 0.4],
    [0.5, 0.2, 0.3],
]


def test_boundaries_are_the_largest_local_signals_and_heads_the_argmax():
    result = _result([0.3, 0.9, 0.2, 0.7, 0.5], BETA)
    assert discretize(result, 1) == ([], [])
    assert discretize(result, 2) == ([2], ["h0"])
    assert discretize(result, 3) == ([2, 4], ["h0", "h2"])
    assert discretize(result, 4) == ([2, 4, 5], ["h0", "h2", "h0"])
    assert discretize(result, 6) == (
        [1, 2, 3, 4, 5],
        ["h1", "h0", "h2", "h2", "h0"],
    )


def test_ties_go_to_the_earlier_unit_and_the_earlier_head():
    alpha = np.zeros((5, 2))  # Every a_l0 = 0.5: all tied.
    beta = np.zeros((5, 4))  # Every head tied.
    assert discretize((alpha, beta), 3) == ([1, 2], ["light1", "light1"])
    alpha[3] = [1.0, 0.0]
    alpha[4] = [1.0, 0.0]  # Units 4 and 5 tie above the rest.
    assert discretize((alpha, beta), 2) == ([4], ["light1"])
    assert discretize((alpha, beta), 3) == ([4, 5], ["light1", "light1"])


def test_raw_pairs_need_names_for_other_candidate_counts():
    alpha, beta = np.zeros((2, 2)), np.array([[0.0, 1.0], [2.0, 0.0]])
    with pytest.raises(ValueError, match="head_names"):
        discretize((alpha, beta), 2)
    assert discretize((alpha, beta), 3, head_names=["a", "b"]) == (
        [1, 2],
        ["b", "a"],
    )


@pytest.mark.parametrize("num_blocks", [0, 7, 2.5, True])
def test_out_of_range_block_counts_are_refused(num_blocks):
    result = _result([0.3, 0.9, 0.2, 0.7, 0.5], BETA)
    with pytest.raises(ValueError, match="1..6 blocks"):
        discretize(result, num_blocks)


def test_bad_shapes_are_refused():
    with pytest.raises(ValueError, match=r"\(L - 1, 2\)"):
        discretize((np.zeros((3, 3)), np.zeros((3, 4))), 2)
    with pytest.raises(ValueError, match="to match alpha"):
        discretize((np.zeros((3, 2)), np.zeros((2, 4))), 2)
    with pytest.raises(ValueError, match="SearchResult"):
        discretize("decoupling.json", 2)
