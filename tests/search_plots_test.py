"""Tests of the alpha/beta picture."""

import numpy as np

from localgrad.search.plots import alpha_beta_figure, figure_png


def test_figure_shows_local_signal_bars_and_the_beta_map():
    alpha = np.array([[0.3, 0.7], [0.8, 0.2], [0.5, 0.5]])
    beta = np.array([[0.1, 0.9], [0.6, 0.4], [0.5, 0.5]])
    figure = alpha_beta_figure(
        alpha, beta, ["a", "b", "c", "d"], ["light1", "light2"]
    )
    top, bottom = figure.axes[:2]
    heights = [patch.get_height() for patch in top.patches]
    np.testing.assert_allclose(heights, alpha[:, 0])
    np.testing.assert_allclose(bottom.images[0].get_array(), beta.T)
    assert [t.get_text() for t in bottom.get_yticklabels()] == [
        "light1",
        "light2",
    ]
    assert figure_png(figure)[:8] == b"\x89PNG\r\n\x1a\n"
