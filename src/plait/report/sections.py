"""The report's sections, each built from the run folder's files alone.

A section whose file is absent says how to produce it; one that fails to draw says so
in the page (and in a logged warning) while the other sections are still written.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from plait.report import plots
from plait.report.details import MIN_BOX_SCORE
from plait.report.html import cards, fmt, image, note, table, text


def read_json(path: Path) -> dict[str, Any] | None:
    return json.loads(path.read_text()) if path.is_file() else None


def held_metrics(metrics: dict[str, Any]) -> tuple[str, dict[str, float]]:
    """The held-out split's name and metrics: test when the run has one, else validation."""
    split = "test" if "test" in metrics else "validation"
    return split, metrics.get(split, {})


def overview(folder: Path, metrics: dict[str, Any], config: dict[str, Any]) -> str:
    split, held = held_metrics(metrics)
    facts = {f"{k} ({split})": v for k, v in held.items()}
    facts.update(
        {
            "epochs": metrics.get("epochs"),
            "best epoch": metrics.get("best_epoch"),
            "training seconds": metrics.get("train_seconds"),
            "training rows/s": metrics.get("train_samples_per_second"),
        }
    )
    names = list(dict.fromkeys([*metrics.get("validation", {}), *metrics.get("test", {})]))
    rows = [
        {"metric": n, **{s: metrics[s].get(n) for s in ("validation", "test") if s in metrics}} for n in names
    ]
    fusion = (config.get("fusion") or {}).get("name", "?")
    inputs = ", ".join(f"{i['name']} ({i.get('type')})" for i in config.get("inputs", []))
    body = cards({k: v for k, v in facts.items() if v is not None})
    body += f"<p>Fusion <b>{text(fusion)}</b> over {text(inputs) or 'no inputs'}.</p>"
    body += "<h3>Final metrics</h3>" + table(rows)
    for target, cuts in (metrics.get("thresholds") or {}).items():
        body += f"<h3>Decision thresholds of {text(target)}</h3>"
        body += table([{"label": k, "threshold": v} for k, v in cuts.items()])
    return body


def data(summary: dict[str, Any] | None) -> str:
    if summary is None:
        return note("No data summary in this run folder (summary.json is written by training).")
    rows = {f"rows ({k})": v for k, v in summary.get("rows", {}).items()}
    sample = summary.get("sample_rows")
    body = cards(rows if sample is None else {**rows, "rows (sample)": sample})
    if sample is not None:
        total = summary.get("rows", {}).get("table")
        body += note(
            f"Streamed table: row counts and label distributions cover all {fmt(total)} rows (one pass "
            f"over the label column); column types and missing rates come from a sample of {fmt(sample)} "
            "rows, the one the preprocessing was fitted on."
        )
    columns = [{**c, "missing": f"{100 * c.get('missing', 0):.1f} %"} for c in summary.get("columns", [])]
    body += "<h3>Columns</h3>" + table(columns, ["name", "role", "type", "encoder", "group", "missing"])
    for target, dist in summary.get("labels", {}).items():
        body += f"<h3>Label distribution: {text(target)}</h3>"
        if dist["type"] == "numeric":
            body += table([dist["stats"]])
            body += image(plots.histogram(dist["edges"], dist["counts"], target), f"{target} histogram")
        else:
            what = "rows holding each label" if dist["type"] == "multilabel" else "rows per class"
            body += image(plots.class_counts(dist["classes"], dist["counts"], what), f"{target} distribution")
    return body


def training(folder: Path, metrics: dict[str, Any]) -> str:
    path = folder / "log.csv"
    if not path.is_file():
        return note("No training log (log.csv) in this run folder.")
    log = pd.read_csv(path)
    groups: dict[str, dict[str, list[float]]] = {"loss": {}}
    for column in log.columns:
        if column == "epoch" or column.startswith("lr"):
            continue
        values = log[column].astype(float).tolist()
        if column.endswith("loss"):
            groups["loss"][column] = values
        elif column.startswith("val_"):  # val_accuracy, or val_<target>/<metric>
            name = column[4:]
            groups.setdefault(name.split("/")[-1], {})[name] = values
    groups = dict(list(groups.items())[:4])  # loss and the first three metrics
    body = image(plots.learning_curves(log["epoch"].tolist(), groups), "learning curves")
    seconds = metrics.get("epoch_seconds")
    if seconds:
        body += f"<p>Seconds per training epoch: {', '.join(fmt(s) for s in seconds)}.</p>"
    records = log.to_dict(orient="records")
    return body + f"<details><summary>Per-epoch log</summary>{table(records)}</details>"


def leaderboard(metrics: dict[str, Any]) -> str:
    """The candidates of an ensemble run (plait.ensemble), as `plait leaderboard` shows them."""
    rows = metrics.get("leaderboard")
    if not rows:
        return note(
            "The network was the only candidate. --preset best (or --candidates "
            "neural,lightgbm,linear) also trains LightGBM and a linear probe and weights them in."
        )
    intro = (
        "<p>Each candidate fitted on the training rows and scored on the validation rows; the "
        "weights are greedy ensemble selection's (Caruana 2004) on the validation loss.</p>"
    )
    return intro + table(rows)


def search(folder: Path) -> str:
    """`plait tune`'s trials (trials.csv, search.png): this run is the search's best."""
    trials = pd.read_csv(folder / "trials.csv")
    network = trials[trials["stage"] == "network"] if "stage" in trials else trials
    body = f"<p>This run is the best of {len(network)} trials of <code>plait tune</code> (validation loss)"
    if len(network) < len(trials):  # the final run's search of LightGBM's settings
        searched = len(trials) - len(network)
        body += f", trained again with its candidates after {searched} trials of LightGBM's settings"
    body += ".</p>"
    if (folder / "search.png").is_file():
        body += image((folder / "search.png").read_bytes(), "each trial's validation loss")
    return (
        body + f"<details><summary>Every trial</summary>{table(trials.to_dict(orient='records'))}</details>"
    )


def evaluation(summary: dict[str, Any] | None, metrics: dict[str, Any]) -> str:
    split, held = held_metrics(metrics)
    if summary is None or not summary.get("evaluation"):
        return note(f"Only the metrics above ({split} rows): this run has no per-row evaluation details.")
    body = f"<p>On the held-out {text(summary.get('held_out', split))} rows.</p>"
    for target, details in summary["evaluation"].items():
        if details is None:
            continue
        body += f"<h3>{text(target)}</h3>"
        mine = {k.split("/", 1)[1]: v for k, v in held.items() if k.startswith(f"{target}/")} or held
        body += table([mine]) if len(summary["evaluation"]) > 1 else ""
        body += _target(target, details)
    return body


def _target(target: str, d: dict[str, Any]) -> str:
    if d["kind"] in ("boxes", "box"):
        return image(plots.boxes(d["samples"]), f"{target}: true and predicted boxes") + (
            f"<p>The first {len(d['samples'])} held-out images: true boxes solid green, predicted "
            "dashed red (label and score)"
            + (f", detections scoring at least {MIN_BOX_SCORE}" if d["kind"] == "boxes" else "")
            + ".</p>"
        )
    if d["kind"] == "numeric":
        sampled = f" (a sample of {len(d['true'])} of {d['rows']} rows)" if len(d["true"]) < d["rows"] else ""
        return image(plots.residuals(d["true"], d["predicted"], target), "residual plot") + (
            f"<p>Predicted against true values{sampled}.</p>"
        )
    curves = d.get("curves", [])
    body = ""
    if d["kind"] in ("category", "binary"):
        body += image(plots.confusion(d["confusion"], d["classes"]), f"{target} confusion matrix")
        body += _confused_pairs(d["confusion"], d["classes"])
    if any("fpr" in c for c in curves):
        body += f"<p>ROC and precision-recall curves ({text(d.get('average', 'per label'))}).</p>"
        body += image(plots.roc_pr(curves), f"{target} ROC and precision-recall curves")
    if d["kind"] == "multilabel":
        body += table(
            d["labels"], ["label", "positives", "predicted", "threshold", "precision", "recall", "f1", "ap"]
        )
    else:
        body += table(curves, ["label", "positives", "rows", "auc", "ap"])
    return body


def _confused_pairs(matrix: list[list[int]], classes: list[str], top: int = 8) -> str:
    cells = [
        {"true": classes[r], "predicted as": classes[c], "rows": n}
        for r, row in enumerate(matrix)
        for c, n in enumerate(row)
        if r != c and n
    ]
    if not cells:
        return "<p>No held-out row was misclassified.</p>"
    cells.sort(key=lambda x: -x["rows"])
    return "<p>Most frequent confusions:</p>" + table(cells[:top])


def importance(data: dict[str, Any] | None) -> str:
    if data is None:
        return note("Not computed; run <code>plait explain RUN DATA</code> to add it to this report.")
    metric = str(data.get("metric", "metric"))
    body = "".join(note(f"⚠ {text(w)}", "warn") for w in data.get("warnings", []))
    facts = {
        "target": data.get("target"),
        f"clean {metric}": data.get("clean"),
        "rows": data.get("rows"),
        "bootstrap resamples": data.get("bootstrap"),
    }
    body += cards({k: v for k, v in facts.items() if v is not None})
    body += (
        f"<p>The drop in {text(metric)} when an input is removed or shuffled across rows (permuted), "
        "with its bootstrap interval [low, high]; <i>only</i> rows give the score an input reaches "
        "alone.</p>"
    )
    inputs = data.get("inputs") or []
    groups = [("input", "Per input", inputs)]
    modalities = data.get("modalities") or []
    if {r.get("modality") for r in modalities} != {r.get("input") for r in inputs}:
        groups.append(("modality", "Per modality", modalities))
    for key, title, records in groups:
        # `only` rows hold the score an input reaches alone: in the table, not among the drops.
        drops = [r for r in records if r.get("method") != "only"]
        if drops:
            body += f"<h3>{title}</h3>" + image(plots.importance(drops, key, metric), f"importance {key}")
        if records:
            body += ("" if drops else f"<h3>{title}</h3>") + table(records)
    per_class = pd.DataFrame(data.get("per_class") or [])
    if len(per_class):
        title = "Recall drop per class"
        if (per_class["method"] == "remove").any():  # the readable one: each input removed
            per_class, title = per_class[per_class["method"] == "remove"], f"{title} with each input removed"
        pivot = per_class.pivot_table(index="class", columns="input", values="drop", sort=False)
        body += f"<h3>{title}</h3>" + table(pivot.reset_index().to_dict(orient="records"))
    return body


def robustness(data: dict[str, Any] | None) -> str:
    if data is None:
        return note(
            "Not computed; <code>plait evaluate RUN DATA --robustness</code> measures how the "
            "model degrades with inputs missing or noisy."
        )
    metric, clean = str(data["metric"]), float(data["clean"])
    body = cards({f"clean {metric}": clean})
    missing = [
        {
            "condition": r["condition"],
            metric: r[metric],
            "change": None if r[metric] is None else r[metric] - clean,
        }
        for r in data.get("missing", [])
    ]
    if missing:
        body += "<h3>Inputs missing</h3>" + table(missing)
    if data.get("noise"):
        body += "<h3>Noisy inputs</h3>" + image(
            plots.noise_curves(data["noise"], metric, clean), "noise curves"
        )
    if data.get("summary"):
        body += (
            "<p>Relative robustness: the mean metric across noise levels; effective: the area of "
            "the drop from clean relative to the baseline run (MultiBench).</p>"
        )
        body += table(data["summary"])
    return body


def config(folder: Path) -> str:
    path = folder / "config.yaml"
    return f"<details><summary>config.yaml</summary><pre>{text(path.read_text())}</pre></details>"
