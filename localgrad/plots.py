"""Plots of a trained GreedyModel, drawn with matplotlib's Agg renderer."""

from collections.abc import Sequence

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from localgrad.errors import UserError


def plot_accuracy_by_block(
    depths: Sequence[int],
    accuracies: Sequence[float],
    path: str | None = None,
    head_names: Sequence[str] | None = None,
    num_units: int | None = None,
    title: str | None = None,
) -> Figure:
    """Test accuracy of every block's head against the depth it sits at.

    One marker per head, joined in depth order, each labelled with its
    head's name and accuracy. The depth of block k's head is the number of
    units below it (the boundary `b` after which it sits; the network's
    classifier sits after the last unit). Needs no display: the figure is
    drawn with Agg, not pyplot.

    Example:

    ```python
    plot_accuracy_by_block([3, 6, 8], [0.71, 0.86, 0.90],
                           path="/tmp/run/accuracy_by_block.png",
                           head_names=["mlp_sr", "mlp_sr", "classifier"])
    ```

    Args:
        depths: Unit index of each head, increasing.
        accuracies: Test accuracy of each head, as a fraction in [0, 1].
        path: If given, the figure is saved there as PNG.
        head_names: Optional name of each head, written next to it.
        num_units: The network's unit count L, to show the whole depth.
        title: The figure's title.

    Returns:
        The matplotlib `Figure`.

    Raises:
        ValueError: for empty or mismatched inputs.
    """
    depths = [int(d) for d in depths]
    accuracies = [float(a) for a in accuracies]
    if not depths or len(depths) != len(accuracies):
        raise UserError(
            f"Give one accuracy per head depth; got {len(depths)} depths "
            f"and {len(accuracies)} accuracies."
        )
    if head_names is not None and len(head_names) != len(depths):
        raise UserError(
            f"Got {len(head_names)} head names for {len(depths)} heads."
        )
    figure = Figure(figsize=(6.4, 4.2), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    percent = [100.0 * a for a in accuracies]
    axes.plot(depths, percent, marker="o", markersize=7, linewidth=1.5)
    for index, (depth, value) in enumerate(zip(depths, percent)):
        name = f"{head_names[index]}: " if head_names is not None else ""
        axes.annotate(
            f"{name}{value:.1f}%",
            (depth, value),
            textcoords="offset points",
            xytext=(0, 8),
            ha="center",
            fontsize=8,
        )
    last = max(num_units or 0, max(depths))
    axes.set_xlim(0.5, last + 0.5)
    axes.set_xticks(range(1, last + 1))
    low = min(percent)
    axes.set_ylim(max(0.0, low - 10.0), min(100.0, max(percent) + 6.0))
    axes.set_xlabel("Depth of the head (units below it)")
    axes.set_ylabel("Test accuracy (%)")
    axes.set_title(title or "Test accuracy of each block's head")
    axes.grid(True, alpha=0.3)
    figure.tight_layout()
    if path is not None:
        figure.savefig(path, format="png")
    return figure
