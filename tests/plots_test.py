"""Tests of localgrad.plots."""

import matplotlib.image
import numpy as np
import pytest

from localgrad import plots

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_accuracy_by_block_has_one_point_per_head(tmp_path):
    path = tmp_path / "accuracy_by_block.png"
    depths, accuracies = [3, 6, 8], [0.71, 0.86, 0.9]
    names = ["mlp_sr", "mlp_sr", "classifier"]
    figure = plots.plot_accuracy_by_block(
        depths, accuracies, path=str(path), head_names=names, num_units=8
    )
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    image = matplotlib.image.imread(str(path))
    assert image.shape[0] > 200 and image.shape[1] > 300
    assert image[..., :3].std() > 0.05  # Not a blank canvas.
    (axes,) = figure.axes
    (line,) = axes.lines
    np.testing.assert_array_equal(line.get_xdata(), depths)
    np.testing.assert_allclose(line.get_ydata(), [71.0, 86.0, 90.0])
    labels = [text.get_text() for text in axes.texts]
    assert labels == ["mlp_sr: 71.0%", "mlp_sr: 86.0%", "classifier: 90.0%"]
    assert axes.get_xlim() == (0.5, 8.5)  # The whole depth, unit 1 to L.
    assert "accuracy" in axes.get_ylabel().lower()
    assert "depth" in axes.get_xlabel().lower()


def test_accuracy_by_block_rejects_mismatched_inputs():
    with pytest.raises(ValueError, match="one accuracy per head"):
        plots.plot_accuracy_by_block([1, 2], [0.5])
    with pytest.raises(ValueError, match="head names"):
        plots.plot_accuracy_by_block([1, 2], [0.5, 0.6], head_names=["a"])
