"""The report's figures: matplotlib on the Agg canvas → PNG bytes (no pyplot, no display,
no global backend switch, so a user's notebook backend is left alone)."""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.ticker import MaxNLocator

COLOURS = ("#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860", "#da8bc3", "#8c8c8c")
MAX_BARS = 30  # classes drawn in a distribution; the most frequent ones
MAX_CONFUSION = 25  # classes drawn in a confusion matrix; the most frequent true ones
DPI = 90


def _figure(width: float, height: float, panels: int = 1) -> tuple[Figure, list[Axes]]:
    fig = Figure(figsize=(width, height), dpi=DPI)
    FigureCanvasAgg(fig)
    axes = [fig.add_subplot(1, panels, i + 1) for i in range(panels)]
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.set_axisbelow(True)
    return fig, axes


def png(fig: Figure) -> bytes:
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


def learning_curves(epochs: Sequence[int], series: dict[str, dict[str, list[float]]]) -> bytes:
    """One panel per group ("loss", then one per metric name), one line per series;
    NaN values (epochs a series was not logged) are skipped."""
    fig, axes = _figure(4.2 * len(series), 3.2, len(series))
    for ax, (title, lines) in zip(axes, series.items(), strict=True):
        for i, (name, values) in enumerate(lines.items()):
            y = np.asarray(values, dtype=float)
            ok = ~np.isnan(y)
            ax.plot(np.asarray(epochs)[ok], y[ok], marker="o", ms=3, label=name, color=COLOURS[i % 8])
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend(fontsize=8)
    return png(fig)


def class_counts(classes: list[str], counts: dict[str, list[int]], title: str) -> bytes:
    """Grouped bars: rows per class and split (the MAX_BARS most frequent classes)."""
    total = np.sum([np.asarray(c) for c in counts.values()], axis=0)
    order = np.argsort(-total, kind="stable")[:MAX_BARS]
    order = sorted(order) if len(classes) <= MAX_BARS else order
    fig, (ax,) = _figure(max(4.5, 0.35 * len(order) * len(counts) + 1.5), 3.2)
    width = 0.8 / len(counts)
    x = np.arange(len(order))
    for i, (split, values) in enumerate(counts.items()):
        ax.bar(x + i * width, np.asarray(values)[order], width, label=split, color=COLOURS[i])
    ax.set_xticks(x + width * (len(counts) - 1) / 2, [classes[i] for i in order], rotation=45, ha="right")
    ax.set_ylabel("rows")
    ax.set_title(title if len(classes) <= MAX_BARS else f"{title} ({MAX_BARS} most frequent)")
    ax.legend(fontsize=8)
    return png(fig)


def histogram(edges: list[float], counts: dict[str, list[int]], title: str) -> bytes:
    fig, (ax,) = _figure(5, 3.2)
    for i, (split, values) in enumerate(counts.items()):
        share = np.asarray(values) / max(1, sum(values))  # splits differ in size
        ax.stairs(share, edges, label=split, color=COLOURS[i], linewidth=1.5)
    ax.set_ylabel("share of rows")
    ax.set_title(title)
    ax.legend(fontsize=8)
    return png(fig)


def confusion(matrix: list[list[int]], classes: list[str]) -> bytes:
    """Counts, coloured by the share of each true class (row) predicted as each class."""
    counts = np.asarray(matrix)
    keep = np.sort(np.argsort(-counts.sum(1), kind="stable")[:MAX_CONFUSION])
    counts = counts[np.ix_(keep, keep)]
    rates = counts / np.maximum(1, counts.sum(1, keepdims=True))
    n = len(keep)
    fig, (ax,) = _figure(max(3.8, 0.42 * n + 2), max(3.2, 0.38 * n + 1.6))
    ax.grid(False)
    ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    names = [classes[i] for i in keep]
    ax.set_xticks(range(n), names, rotation=45, ha="right")
    ax.set_yticks(range(n), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if n <= 15:
        for (r, c), v in np.ndenumerate(counts):
            colour = "white" if rates[r, c] > 0.5 else "black"
            ax.text(c, r, str(v), ha="center", va="center", fontsize=9, color=colour)
    title = "confusion matrix" if n == len(classes) else f"confusion matrix ({n} most frequent classes)"
    ax.set_title(title)
    return png(fig)


def roc_pr(curves: list[dict[str, Any]]) -> bytes:
    """ROC (left) and precision-recall (right), one line per curve record."""
    fig, (roc, pr) = _figure(9, 3.8, 2)
    roc.plot([0, 1], [0, 1], ls="--", color="#999999", lw=1)
    for i, c in enumerate(r for r in curves if "fpr" in r):
        colour = COLOURS[i % 8]
        roc.plot(c["fpr"], c["tpr"], color=colour, label=f"{c['label']} (AUC {c['auc']:.3f})")
        pr.plot(c["recall"], c["precision"], color=colour, label=f"{c['label']} (AP {c['ap']:.3f})")
    roc.set(
        xlabel="false positive rate", ylabel="true positive rate", title="ROC", xlim=(0, 1), ylim=(0, 1.02)
    )
    pr.set(xlabel="recall", ylabel="precision", title="precision-recall", xlim=(0, 1), ylim=(0, 1.02))
    roc.legend(fontsize=7, loc="lower right")
    pr.legend(fontsize=7, loc="lower left")
    return png(fig)


def residuals(true: list[float], predicted: list[float], target: str) -> bytes:
    """Predicted against true (left, the diagonal is perfect) and residual against predicted."""
    y, p = np.asarray(true, dtype=float), np.asarray(predicted, dtype=float)
    fig, (left, right) = _figure(9, 3.8, 2)
    alpha = 0.6 if len(y) < 500 else 0.3
    left.scatter(y, p, s=8, alpha=alpha, color=COLOURS[0])
    low, high = float(min(y.min(), p.min())), float(max(y.max(), p.max()))
    left.plot([low, high], [low, high], ls="--", color="#999999", lw=1)
    left.set(xlabel=f"true {target}", ylabel=f"predicted {target}", title="predicted vs true")
    right.scatter(p, p - y, s=8, alpha=alpha, color=COLOURS[1])
    right.axhline(0, ls="--", color="#999999", lw=1)
    right.set(xlabel=f"predicted {target}", ylabel="residual (predicted − true)", title="residuals")
    return png(fig)


def importance(records: list[dict[str, Any]], key: str, metric: str) -> bytes:
    """Horizontal bars: the metric's drop per input (`key`) and method, [low, high] as error bars."""
    names = list(dict.fromkeys(str(r[key]) for r in records))
    methods = list(dict.fromkeys(str(r.get("method", "")) for r in records))
    fig, (ax,) = _figure(6.5, max(2.2, 0.32 * len(names) * len(methods) + 1.2))
    height = 0.8 / len(methods)
    for m, method in enumerate(methods):
        rows = {str(r[key]): r for r in records if str(r.get("method", "")) == method}
        y = np.arange(len(names)) + m * height
        drop = np.array([_num(rows.get(n, {}).get("drop")) for n in names])
        low = np.array([_num(rows.get(n, {}).get("low", rows.get(n, {}).get("drop"))) for n in names])
        high = np.array([_num(rows.get(n, {}).get("high", rows.get(n, {}).get("drop"))) for n in names])
        err = np.nan_to_num(np.vstack([drop - low, high - drop]).clip(min=0))
        ax.barh(y, drop, height, xerr=err, capsize=2, label=method or None, color=COLOURS[m % 8])
    ax.set_yticks(np.arange(len(names)) + height * (len(methods) - 1) / 2, names)
    ax.invert_yaxis()
    ax.axvline(0, color="#333333", lw=0.8)
    ax.set_xlabel(f"drop in {metric} (higher: the model relies on it more)")
    if len(methods) > 1 or methods[0]:
        ax.legend(fontsize=8)
    return png(fig)


def noise_curves(records: list[dict[str, Any]], metric: str, clean: float) -> bytes:
    """The metric against noise level, one line per (input, corruption)."""
    fig, (ax,) = _figure(8.5, 3.8)
    curves: dict[str, list[tuple[float, float]]] = {}
    for r in records:
        curves.setdefault(f"{r['input']} · {r['corruption']}", []).append(
            (float(r["level"]), _num(r[metric]))
        )
    for i, (name, points) in enumerate(curves.items()):
        x, y = zip(*sorted(points), strict=True)
        ax.plot(x, y, marker="o", ms=3, label=name, color=COLOURS[i % 8], ls="-" if i < 8 else "--")
    ax.axhline(clean, ls=":", color="#333333", lw=1, label="clean")
    ax.set(xlabel="noise level", ylabel=metric, title=f"{metric} with noisy inputs")
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))  # beside, not over, the lines
    return png(fig)


def _num(value: Any) -> float:
    return float("nan") if value is None else float(value)


def boxes(samples: list[dict[str, Any]]) -> bytes:
    """Held-out images side by side: true boxes in green, predicted ones dashed in red
    (label and score beside them). Boxes are fractions of each image."""
    import base64

    from PIL import Image

    fig, axes = _figure(2.6 * len(samples), 2.9, len(samples))
    for ax, sample in zip(axes, samples, strict=True):
        pixels = np.asarray(Image.open(io.BytesIO(base64.b64decode(sample["image"]))))
        height, width = pixels.shape[:2]
        ax.imshow(pixels, cmap="gray" if pixels.ndim == 2 else None)
        ax.grid(False)
        ax.set_xticks([])
        ax.set_yticks([])
        for kind, colour, style in (("true", "#2ca02c", "-"), ("predicted", "#d62728", "--")):
            for box in sample[kind]:
                x0, y0, x1, y1 = box[0] * width, box[1] * height, box[2] * width, box[3] * height
                ax.add_patch(
                    Rectangle(
                        (x0, y0), x1 - x0, y1 - y0, fill=False, edgecolor=colour, linestyle=style, lw=1.5
                    )
                )
                label = " ".join(str(v) for v in box[4:] if v != "")
                if label:
                    ax.text(
                        x0,
                        y0 - 1 if kind == "true" else y1 + 1,
                        label,
                        color=colour,
                        fontsize=7,
                        va="bottom" if kind == "true" else "top",
                    )
    return png(fig)
