"""Pictures of (alpha, beta): `alpha_beta.png` and TensorBoard images."""

import io
from collections.abc import Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


def alpha_beta_figure(
    alpha_softmax,
    beta_softmax,
    unit_names: Sequence[str],
    head_names: Sequence[str],
    title: str = "",
) -> Figure:
    """Bars of a_l0 per non-last unit above a heat map of b_l.

    Example:

    ```python
    figure = alpha_beta_figure(result.alpha_softmax, result.beta_softmax,
                               result.unit_names, result.head_names)
    figure.savefig("alpha_beta.png")
    ```

    Args:
        alpha_softmax: `(L - 1, 2)` array.
        beta_softmax: `(L - 1, M)` array.
        unit_names: The L unit names (the last has no decision variables).
        head_names: The M candidate head names.
        title: A title over both panels.

    Returns:
        A matplotlib `Figure` (not attached to pyplot).
    """
    alpha_softmax = np.asarray(alpha_softmax, np.float64)
    beta_softmax = np.asarray(beta_softmax, np.float64)
    count = alpha_softmax.shape[0]
    positions = np.arange(count)
    labels = [f"{i + 1}" for i in range(count)]
    figure = Figure(
        figsize=(max(6.0, 0.45 * count + 2.0), 6.0), layout="constrained"
    )
    FigureCanvasAgg(figure)
    top, bottom = figure.subplots(2, 1, sharex=True)
    top.bar(positions, alpha_softmax[:, 0], color="tab:blue")
    top.axhline(0.5, color="grey", linewidth=0.8, linestyle="--")
    top.set_ylim(0.0, 1.0)
    top.set_ylabel("a_l0 (local signal)")
    top.set_title(title or "softmax(alpha): local vs back-propagated signal")
    image = bottom.imshow(
        beta_softmax.T,
        aspect="auto",
        cmap="viridis",
        vmin=0.0,
        vmax=max(float(beta_softmax.max()), 1e-12),
    )
    best = np.argmax(beta_softmax, axis=1)
    bottom.scatter(positions, best, marker="x", color="white", s=30)
    bottom.set_yticks(range(len(head_names)), list(head_names))
    bottom.set_xticks(positions, labels)
    bottom.set_xlabel(
        "boundary after unit (1 = after " + str(unit_names[0]) + ")"
    )
    bottom.set_ylabel("softmax(beta)")
    figure.colorbar(image, ax=[top, bottom], fraction=0.03, pad=0.02)
    return figure


def figure_png(figure: Figure) -> bytes:
    """The figure as PNG bytes (for `tf.summary.image` or a file)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=80)
    return buffer.getvalue()


def save_alpha_beta_plot(path: str, found, title: str = "") -> None:
    """Writes the alpha/beta picture of a result or decoupling to `path`.

    Example:

    ```python
    save_alpha_beta_plot("/tmp/search/alpha_beta.png", result)
    ```
    """
    figure = alpha_beta_figure(
        found.alpha_softmax,
        found.beta_softmax,
        found.unit_names,
        found.head_names,
        title,
    )
    figure.savefig(path, dpi=100)
