"""Figures for retrieval results, drawn with matplotlib's Agg canvas (no display, no global backend switch).

Every function writes one PNG through `saeh.atomic.atomic_path` and returns its path. matplotlib is imported
inside the functions, so importing this module costs nothing.
"""

import numpy as np

from saeh.atomic import atomic_path
from saeh.errors import SaehError


def _figure(width, height):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(figure)
    return figure


def _save(figure, path, overwrite):
    with atomic_path(path, overwrite=overwrite) as temporary:
        figure.savefig(temporary, format="png", bbox_inches="tight")
    return path


def plot_pr_curve_by_radius(curves, path, overwrite=True):
    """Precision against recall of Hamming-ball retrieval, radius 0..bits, one line per run.

    curves: label -> {"radius", "precision", "recall"} (as from `pr_curve_by_radius` or `evaluate_codes`).
    Radii 0 and 2 are marked, radius 2 being the usual operating point.
    """
    figure = _figure(5.5, 4.5)
    axes = figure.add_subplot()
    for label, curve in curves.items():
        recall, precision = np.asarray(curve["recall"]), np.asarray(curve["precision"])
        (line,) = axes.plot(recall, precision, marker=".", label=label)
        for radius in (0, 2):
            if radius < len(recall):
                axes.annotate(f"r={radius}", (recall[radius], precision[radius]), fontsize=7, color=line.get_color())
    axes.set(xlabel="recall", ylabel="precision", title="PR curve by Hamming radius", xlim=(0, 1.02), ylim=(0, 1.02))
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    return _save(figure, path, overwrite)


def plot_precision_at_k(curves, path, overwrite=True):
    """Precision of the first k items against k (log scale), one line per run.

    curves: label -> {"k", "precision"} (as from `evaluate_codes`'s "precision_at_k" or `pr_curve_by_rank`
    with "rank" renamed "k").
    """
    figure = _figure(5.5, 4.5)
    axes = figure.add_subplot()
    for label, curve in curves.items():
        axes.plot(curve["k"], curve["precision"], label=label)
    axes.set(xlabel="k (number of retrieved items)", ylabel="precision@k", title="Precision@k", ylim=(0, 1.02))
    axes.set_xscale("log")
    axes.grid(alpha=0.3, which="both")
    axes.legend(fontsize=8)
    return _save(figure, path, overwrite)


def plot_precision_vs_bits(points, path, radius=2, overwrite=True):
    """Precision within Hamming radius against code length, one line per method (the paper's UT-Zap50K figure).

    points: method -> iterable of (bits, precision).
    """
    figure = _figure(5.5, 4.5)
    axes = figure.add_subplot()
    all_bits = set()
    for method, pairs in points.items():
        pairs = sorted(pairs)
        all_bits.update(bits for bits, _ in pairs)
        axes.plot([bits for bits, _ in pairs], [value for _, value in pairs], marker="o", label=method)
    axes.set(xlabel="bits", ylabel=f"precision (Hamming radius <= {radius})", title="Precision vs code length")
    axes.set_xticks(sorted(all_bits))
    axes.set_ylim(0, 1.02)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    return _save(figure, path, overwrite)


def plot_retrieval_grid(query_image, result_images, distances, relevant_mask, path, overwrite=True, columns=10):
    """A PNG grid: the query image first, then its top-k results, titled with their Hamming distances and framed
    green (relevant), red (not relevant) or grey (relevance unknown: a flag of None).

    Images are (H, W) grey or (H, W, 3) colour, uint8 0..255 or floats in 0..1.
    """
    result_images = list(result_images)
    distances = list(distances)
    relevant_mask = list(relevant_mask)
    if not (len(result_images) == len(distances) == len(relevant_mask)):
        raise SaehError(
            f"plot_retrieval_grid needs one distance and one relevance flag per result image; got "
            f"{len(result_images)} images, {len(distances)} distances, {len(relevant_mask)} flags"
        )
    columns = max(1, min(columns, len(result_images)))
    rows = 1 + -(-len(result_images) // columns)
    figure = _figure(1.3 * max(columns, 2), 1.5 * rows)
    grid = figure.add_gridspec(rows, columns)

    def show(axes, image, title, colour):
        image = np.asarray(image)
        axes.imshow(image, cmap="gray" if image.ndim == 2 else None, vmin=0, vmax=255 if image.dtype == np.uint8 else 1)
        axes.set_title(title, fontsize=8, color=colour)
        axes.set_xticks([])
        axes.set_yticks([])
        for spine in axes.spines.values():
            spine.set_color(colour)
            spine.set_linewidth(3)

    show(figure.add_subplot(grid[0, 0]), query_image, "query", "black")
    for position, (image, distance, relevant) in enumerate(zip(result_images, distances, relevant_mask)):
        row, column = divmod(position, columns)
        show(
            figure.add_subplot(grid[row + 1, column]),
            image,
            f"#{position + 1} d={int(distance)}",
            "grey" if relevant is None else "green" if relevant else "red",
        )
    return _save(figure, path, overwrite)
