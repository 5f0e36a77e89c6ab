"""Simple baselines on the fixed splits of bench.splits (issue 18): what a user would
otherwise run, scored with Plait's own metric code on the same test rows.

    .venv/bin/python -m bench.baselines [--only houses,clothing] [--work /tmp/plait-bench]
        [--autogluon-time-limit 600] [--autogluon-presets medium_quality,best_quality]
        [--no-autogluon]

Per data set, as they apply:
- majority class (classification) or the training mean (regression), and rules
  (clothing: Rating ≥ 4 → recommended);
- logistic regression (classification) or ridge (regression), C / alpha tuned by
  3-fold CV on the training rows only, on (a) raw inputs: images resized to 32×32
  (the 8×8 digits as they are), TF-IDF of text columns, one-hot categories, scaled
  numbers (log1p first when non-negative and skewed), and log-mel statistics for audio;
  (b) frozen pretrained features: EfficientNet-Lite0 (1280-d) per image column and
  MiniLM (384-d) per text column, computed by Plait's own feature processors, with the
  same categories, numbers and audio statistics; each modality alone too on small sets;
- HistGradientBoosting on the table columns (categories native), with TF-IDF → SVD
  text features stacked, and with PCA-reduced frozen features stacked;
- text targets: the caption of the nearest training image (cosine on frozen image
  features, and on pixels), chrF and BLEU as Plait scores them;
- retrieval: a ridge map from caption features (TF-IDF, MiniLM) to image features,
  alpha tuned by 3-fold CV over training images, recall@1/5/10 as Plait computes it;
- AutoGluon TabularPredictor (clothing, houses) in its own virtual environment.

Features are cached as .npy under WORK/<name>/features, so a rerun costs the fits only.
Results go to WORK/baselines.json (merged with what is already there).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch
from sklearn.decomposition import PCA, TruncatedSVD
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.exceptions import ConvergenceWarning
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression, Ridge, RidgeCV
from sklearn.metrics import f1_score
from sklearn.model_selection import GroupKFold, StratifiedKFold
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from bench.splits import SPLITS, WORK, Split, make_split
from plait.data.processors.pretrained import FeatureProcessor

AUTOGLUON_PYTHON = Path("/work/venvs/autogluon/bin/python")
AUTOGLUON_SCRIPT = Path(__file__).with_name("autogluon_fit.py")
AUTOGLUON_SETS = ("clothing", "houses")  # the tabular / text+table sets
# Logistic regression on easy-VQA's 38,575 training rows took 31 min on 2 busy cores, so
# C is tuned on at most TUNE_ROWS rows and the model refitted on at most FIT_ROWS.
TUNE_ROWS = 5000
FIT_ROWS = 10000
SMALL = 10000
Matrix = np.ndarray | sp.spmatrix  # below this many training rows, each modality alone is fitted too
FLICKR_CAPTIONS = Path(__file__).resolve().parents[2] / "shared" / "data" / "flickr8k-1k" / "captions.csv"


@dataclass
class Result:
    baseline: str
    metrics: dict[str, float]
    seconds: float
    note: str = ""


@dataclass
class Data:
    """A split's rows and target, with a feature cache in its work folder."""

    split: Split
    frame: pd.DataFrame
    train: np.ndarray  # (N,) bool
    folder: Path
    feature_seconds: dict[str, float] = field(default_factory=dict)

    @property
    def test(self) -> np.ndarray:
        return ~self.train

    def target(self) -> tuple[np.ndarray, list]:
        """Encoded target (class index, or float) and the classes (empty for numbers)."""
        y = self.frame[self.split.labels[0]]
        if self.split.task == "numeric":
            return y.to_numpy(float), []
        classes = sorted(y.unique().tolist())
        return y.map({c: i for i, c in enumerate(classes)}).to_numpy(int), classes

    def cached(self, key: str, values: list, compute: Callable[[], np.ndarray]) -> np.ndarray:
        """compute() once per (key, values); stored as .npy with its seconds beside it."""
        digest = hashlib.sha1(json.dumps([key, values], default=str).encode()).hexdigest()[:12]
        path = self.folder / "features" / f"{key}-{digest}.npy"
        if path.is_file():
            self.feature_seconds[key] = json.loads(path.with_suffix(".json").read_text())["seconds"]
            return np.load(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        array = np.asarray(compute(), dtype=np.float32)
        seconds = time.perf_counter() - start
        np.save(path, array)
        path.with_suffix(".json").write_text(json.dumps({"seconds": seconds, "shape": array.shape}))
        self.feature_seconds[key] = seconds
        print(f"  features {key}: {array.shape} in {seconds:.0f} s", flush=True)
        return array


# -- features ----------------------------------------------------------------------------
def pixels(data: Data, column: str) -> np.ndarray:
    """(N, C·s·s) in 0..1: images fitted to s×s (8×8 grey for the scikit-learn digits)."""
    from plait.data.processors.image import ImageProcessor

    size, grey = (8, True) if data.split.name == "av_digits" else (32, False)
    paths = data.frame[column].astype(str)
    distinct = sorted(paths.unique())

    def compute() -> np.ndarray:
        channels = 1 if grey else 3
        proc = ImageProcessor(size=size, grayscale=grey, mean=[0.5] * channels, std=[0.5] * channels)
        encoded = proc.fit(pd.Series(distinct[:1])).transform(pd.Series(distinct), column)
        return encoded.values[encoded.index].reshape(len(distinct), -1).float().numpy() / 255

    table = data.cached(f"pixels{size}-{column}", distinct, compute)
    return table[pd.Index(distinct).get_indexer(paths)]


def feature_processor(kind: str, name: str, data: Data) -> FeatureProcessor:
    from plait.encoders.pretrained.backbones import image_preprocessing

    params = image_preprocessing(name, None) if kind == "image" else {"encoder": name, "path": None}
    return FeatureProcessor(
        base={"kind": kind, "params": params},
        backbone={"name": name, "path": None, "model": None},
        cache_dir=str(data.folder.parent / "feature-cache"),
    )


def effnet(data: Data, column: str) -> np.ndarray:
    """(N, 1280) frozen EfficientNet-Lite0 features, through Plait's FeatureProcessor."""
    paths = data.frame[column].astype(str)
    distinct = sorted(paths.unique())

    def compute() -> np.ndarray:
        proc = feature_processor("image", "efficientnet_lite0", data).fit(pd.Series(distinct[:1]))
        encoded = proc.transform(pd.Series(distinct), column)
        return encoded.values[encoded.index].numpy()

    table = data.cached(f"effnet-{column}", distinct, compute)
    return table[pd.Index(distinct).get_indexer(paths)]


def minilm(data: Data, column: str) -> np.ndarray:
    """(N, 384) frozen MiniLM features (mean-pooled); the tokenizer's length is fitted on
    the training rows, as Plait does; empty cells give zeros."""
    texts = data.frame[column]
    train_texts = texts[data.train]
    filled = texts.fillna("").astype(str)
    distinct = sorted(filled.unique())

    def compute() -> np.ndarray:
        proc = feature_processor("hf_text", "minilm", data).fit(train_texts, column)
        values = pd.Series([t if t else None for t in distinct], dtype=object)
        return proc.transform(values, column).values.numpy()

    key = [distinct, train_texts.fillna("").astype(str).tolist()]
    table = data.cached(f"minilm-{column}", key, compute)
    return table[pd.Index(distinct).get_indexer(filled)]


def log_mel_stats(data: Data, column: str) -> np.ndarray:
    """(N, 400): Plait's 40-band log-mel at 8 kHz, mean and std over the clip's real frames
    and the means of 8 equal time segments."""
    from plait.data.processors.audio import AudioProcessor

    paths = data.frame[column].astype(str)
    distinct = sorted(paths.unique())
    train_paths = pd.Series(sorted(paths[data.train].unique()))

    def compute() -> np.ndarray:
        proc = AudioProcessor(sample_rate=8000, n_mels=40).fit(train_paths, column)
        encoded = proc.transform(pd.Series(distinct), column)
        rows = []
        for item in encoded.values[encoded.index].numpy():  # (41, frames)
            mel = item[1:, item[0] > 0.5]  # (40, real frames)
            segments = [s.mean(1) for s in np.array_split(mel, 8, axis=1) if s.shape[1]]
            segments += [segments[-1]] * (8 - len(segments))
            rows.append(np.concatenate([mel.mean(1), mel.std(1), *segments]))
        return np.stack(rows)

    table = data.cached(f"logmel-{column}", distinct, compute)
    return table[pd.Index(distinct).get_indexer(paths)]


def numbers(data: Data, column: str) -> np.ndarray:
    """(N, 1): median-filled, log1p when non-negative and skewed (train skew > 1)."""
    x = data.frame[column].astype(float)
    x = x.fillna(x[data.train].median())
    if x.min() >= 0 and x[data.train].skew() > 1:
        x = np.log1p(x)
    return x.to_numpy()[:, None]


def categories(data: Data, columns: list[str]) -> pd.DataFrame:
    return data.frame[columns].astype(str).where(data.frame[columns].notna(), "missing")


@dataclass
class Block:
    """One input's features: train and test matrices (dense or sparse), and its modality."""

    name: str
    modality: str  # image, text, audio or table
    train: np.ndarray | sp.spmatrix
    test: np.ndarray | sp.spmatrix


def dense_block(data: Data, name: str, modality: str, x: np.ndarray) -> Block:
    """Standardised, then divided by √dims: each input column then weighs about as much as
    one number, one one-hot category or one (unit-norm) TF-IDF row, whatever its width."""
    scaler = StandardScaler().fit(x[data.train])
    scale = np.sqrt(x.shape[1])
    return Block(
        name, modality, scaler.transform(x[data.train]) / scale, scaler.transform(x[data.test]) / scale
    )


def tfidf(data: Data, column: str) -> tuple[sp.spmatrix, sp.spmatrix]:
    texts = data.frame[column].fillna("").astype(str)
    vectorizer = TfidfVectorizer(sublinear_tf=True, ngram_range=(1, 2), min_df=2)
    return vectorizer.fit_transform(texts[data.train]), vectorizer.transform(texts[data.test])


def blocks(data: Data, frozen: bool) -> list[Block]:
    """Raw (pixels, TF-IDF) or frozen pretrained (EfficientNet, MiniLM) blocks, plus the
    table's one-hot categories and scaled numbers, plus audio log-mel statistics."""
    types = data.split.columns
    out = []
    for column, kind in types.items():
        if kind == "image":
            x = effnet(data, column) if frozen else pixels(data, column)
            out.append(dense_block(data, column, "image", x))
        elif kind == "text" and frozen:
            out.append(dense_block(data, column, "text", minilm(data, column)))
        elif kind == "text":
            out.append(Block(column, "text", *tfidf(data, column)))
        elif kind == "audio":
            out.append(dense_block(data, column, "audio", log_mel_stats(data, column)))
        elif kind == "numeric":
            out.append(dense_block(data, column, "table", numbers(data, column)))
    cats = [c for c, kind in types.items() if kind == "category"]
    if cats:
        table = categories(data, cats)
        encoder = OneHotEncoder(handle_unknown="ignore").fit(table[data.train])
        out.append(
            Block(
                "categories",
                "table",
                encoder.transform(table[data.train]),
                encoder.transform(table[data.test]),
            )
        )
    return out


def stack(parts: list[Block]) -> tuple[Matrix, Matrix]:
    """Side by side: sparse when the sparse blocks (TF-IDF, one-hot) are the wider part,
    else dense (easy-VQA: 3,072 pixels beside a few dozen question words)."""
    width = {True: 0, False: 0}
    for b in parts:
        width[sp.issparse(b.train)] += b.train.shape[1]
    if width[True] > width[False]:
        return (sp.hstack([b.train for b in parts]).tocsr(), sp.hstack([b.test for b in parts]).tocsr())
    dense = [
        (b.train.toarray(), b.test.toarray()) if sp.issparse(b.train) else (b.train, b.test) for b in parts
    ]
    return np.hstack([d[0] for d in dense]), np.hstack([d[1] for d in dense])


# -- scoring with Plait's metric code ------------------------------------------------------
def score(data: Data, pred: np.ndarray, labels: np.ndarray | None = None) -> dict[str, float]:
    """pred: class probabilities (N, C), or values (N,) for numbers. `labels`: hard decisions
    that replace argmax for accuracy and macro-F1 (rules, AutoGluon's calibrated threshold)."""
    from plait.evaluation.metrics import TaskMetrics

    y, classes = data.target()
    y = y[data.test]
    task = data.split.task
    if task == "numeric":
        m = TaskMetrics("numeric")
        m.update(torch.tensor(pred, dtype=torch.float32), torch.tensor(y, dtype=torch.float32))
        return m.compute()

    def run(p: np.ndarray) -> dict[str, float]:
        m = TaskMetrics(task, num_classes=len(classes))
        p = p[:, 1] if task == "binary" else p
        m.update(torch.tensor(p, dtype=torch.float32), torch.tensor(y))
        return m.compute()

    out = run(pred)
    if labels is not None:
        out |= {k: v for k, v in run(np.eye(len(classes))[labels]).items() if k != "roc_auc"}
    return out


SCORERS: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
    "accuracy": lambda y, p: float(np.mean(y == p)),
    "macro_f1": lambda y, p: float(f1_score(y, p, average="macro")),
}


# -- models ---------------------------------------------------------------------------------
def logistic(data: Data, x_train: Matrix, x_test: Matrix) -> tuple[np.ndarray, str]:
    """C tuned by stratified 3-fold CV on at most TUNE_ROWS training rows, then refitted
    on at most FIT_ROWS (both seeded subsets; only easy-VQA is larger)."""
    y, _ = data.target()
    y_train = y[data.train]
    fit_rows = np.arange(len(y_train))
    note = ""
    if len(fit_rows) > FIT_ROWS:
        fit_rows = np.sort(np.random.default_rng(0).choice(fit_rows, FIT_ROWS, replace=False))
        note = f"; fitted on {FIT_ROWS:,} of {len(y_train):,} training rows, C tuned on {TUNE_ROWS:,}"
    rows = fit_rows
    if len(rows) > TUNE_ROWS:
        rows = np.sort(np.random.default_rng(0).choice(rows, TUNE_ROWS, replace=False))
    metric = SCORERS.get(data.split.metric, SCORERS["accuracy"])
    folds = list(StratifiedKFold(3, shuffle=True, random_state=0).split(rows, y_train[rows]))
    scores = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for c in np.logspace(-3, 5, 9):
            fold_scores = []
            for fit, held in folds:
                model = LogisticRegression(C=c, max_iter=500).fit(x_train[rows[fit]], y_train[rows[fit]])
                fold_scores.append(metric(y_train[rows[held]], model.predict(x_train[rows[held]])))
            scores[c] = np.mean(fold_scores)
        best = max(scores, key=lambda c: scores[c])
        model = LogisticRegression(C=best, max_iter=1000).fit(x_train[fit_rows], y_train[fit_rows])
    return model.predict_proba(x_test), f"C={best:g}{note}"


def ridge(data: Data, x_train: Matrix, x_test: Matrix) -> tuple[np.ndarray, str]:
    """alpha tuned by (efficient) leave-one-out CV on the training rows."""
    y, _ = data.target()
    model = RidgeCV(alphas=np.logspace(-3, 5, 17)).fit(x_train, y[data.train])
    return model.predict(x_test), f"alpha={model.alpha_:g}"


def linear(data: Data, parts: list[Block]) -> tuple[np.ndarray, str]:
    x_train, x_test = stack(parts)
    return (ridge if data.split.task == "numeric" else logistic)(data, x_train, x_test)


def hgb_table(data: Data, text: str = "", frozen_pca: bool = False) -> tuple[np.ndarray, str]:
    """Table columns (categories native), plus per text column TF-IDF → SVD-64 (text='svd')
    and/or PCA-32 of each frozen image / text feature column (frozen_pca)."""
    types = data.split.columns
    cats = [c for c, k in types.items() if k == "category"]
    nums = [c for c, k in types.items() if k == "numeric"]
    frame = pd.DataFrame({c: data.frame[c].astype(float) for c in nums}, index=data.frame.index)
    for c in cats:
        values = categories(data, [c])[c]
        known = sorted(values[data.train].unique())
        frame[c] = pd.Categorical(values.where(values.isin(known)), categories=known)  # unseen → NaN
    extra_train, extra_test = [], []
    for column, kind in types.items():
        if kind == "text" and text == "svd":
            tr, te = tfidf(data, column)
            svd = TruncatedSVD(min(64, tr.shape[1] - 1), random_state=0).fit(tr)
            extra_train.append(svd.transform(tr))
            extra_test.append(svd.transform(te))
        if kind in ("image", "text") and frozen_pca:
            x = effnet(data, column) if kind == "image" else minilm(data, column)
            pca = PCA(32, random_state=0).fit(x[data.train])
            extra_train.append(pca.transform(x[data.train]))
            extra_test.append(pca.transform(x[data.test]))
        if kind == "audio" and frozen_pca:
            x = log_mel_stats(data, column)
            extra_train.append(x[data.train])
            extra_test.append(x[data.test])
    x_train, x_test = frame[data.train].reset_index(drop=True), frame[data.test].reset_index(drop=True)
    if extra_train:
        extra = [pd.DataFrame(np.hstack(e)).add_prefix("f") for e in (extra_train, extra_test)]
        x_train, x_test = pd.concat([x_train, extra[0]], axis=1), pd.concat([x_test, extra[1]], axis=1)
    y, _ = data.target()
    if data.split.task == "numeric":
        model = HistGradientBoostingRegressor(random_state=0).fit(x_train, y[data.train])
        return model.predict(x_test), f"{x_train.shape[1]} columns"
    model = HistGradientBoostingClassifier(random_state=0).fit(x_train, y[data.train])
    return model.predict_proba(x_test), f"{x_train.shape[1]} columns"


def timed(name: str, fit: Callable[[], tuple], data: Data, results: list[Result]) -> None:
    start = time.perf_counter()
    out = fit()
    seconds = time.perf_counter() - start
    pred, note = out[0], out[1]
    labels = out[2] if len(out) > 2 else None
    metrics = score(data, pred, labels) if not isinstance(pred, dict) else pred
    results.append(Result(name, metrics, seconds, note))
    shown = ", ".join(f"{k} {v:.4f}" for k, v in metrics.items() if "_to_" not in k)
    print(f"  {name}: {shown}  ({seconds:.1f} s; {note})", flush=True)


def majority(data: Data) -> tuple[np.ndarray, str]:
    y, classes = data.target()
    if data.split.task == "numeric":
        return np.full(data.test.sum(), y[data.train].mean()), "training mean"
    top = np.bincount(y[data.train], minlength=len(classes)).argmax()
    return np.tile(np.eye(len(classes))[top], (data.test.sum(), 1)), f"always {classes[top]!r}"


def predictive_sets(data: Data) -> dict[str, Callable[[], tuple]]:
    """Classification and regression baselines."""
    fits: dict[str, Callable[[], tuple]] = {
        "majority class" if data.split.task != "numeric" else "training mean": lambda: majority(data)
    }
    if data.split.name == "clothing":
        fits["rule: Rating ≥ 4 → recommended"] = lambda: rating_rule(data)
    name = "logistic regression" if data.split.task != "numeric" else "ridge"
    for frozen in (False, True):
        kind = "frozen features (EfficientNet-Lite0 / MiniLM)" if frozen else "raw (pixels / TF-IDF)"
        parts = blocks(data, frozen)
        modalities = sorted({b.modality for b in parts})
        fits[f"{name}, {kind}, all inputs"] = lambda parts=parts: linear(data, parts)
        if len(modalities) > 1 and data.train.sum() < SMALL:
            for modality in modalities:
                if frozen and modality in ("table", "audio"):
                    continue  # the same features as in the raw rows
                alone = [b for b in parts if b.modality == modality]
                label = f"{name}, {kind if modality in ('image', 'text') else 'raw'}, {modality} only"
                fits[label] = lambda alone=alone: linear(data, alone)
    types = set(data.split.columns.values())
    if types & {"category", "numeric"}:
        fits["HistGradientBoosting, table columns"] = lambda: hgb_table(data)
    if "text" in types and types & {"category", "numeric"}:
        fits["HistGradientBoosting, table + TF-IDF→SVD-64 per text column"] = lambda: hgb_table(data, "svd")
    if types & {"image", "text"}:
        label = "HistGradientBoosting, table + PCA-32 of each frozen feature column"
        if not types & {"category", "numeric"}:
            label = "HistGradientBoosting, PCA-32 of each frozen feature column" + (
                " + log-mel stats" if "audio" in types else ""
            )
        fits[label] = lambda: hgb_table(data, frozen_pca=True)
    return fits


def rating_rule(data: Data) -> tuple[np.ndarray, str, np.ndarray]:
    rating = data.frame.loc[data.test, "Rating"].to_numpy(float)
    decided = (rating >= 4).astype(int)
    proba = np.stack([1 - rating / 5, rating / 5], axis=1)  # the rating itself ranks (ROC-AUC)
    return proba, "accuracy/F1 from the rule, ROC-AUC from the rating", decided


# -- text targets -----------------------------------------------------------------------------
def caption_sets(data: Data) -> dict[str, Callable[[], tuple]]:
    from plait.data.processors import TextTarget
    from plait.evaluation.generation import text_metrics

    label = data.split.labels[0]
    target = TextTarget().fit(data.frame.loc[data.train, label])
    norm = np.array(target.normalise(data.frame[label]))
    five = pd.read_csv(FLICKR_CAPTIONS)
    five["image"] = [str((FLICKR_CAPTIONS.parent / p).resolve()) for p in five["image"]]
    all_refs = five.groupby("image")["caption"].apply(lambda c: target.normalise(c)).to_dict()
    test_images = data.frame.loc[data.test, "image"].tolist()

    def nearest(x: np.ndarray) -> tuple[dict, str]:
        train_x = x[data.train] - x[data.train].mean(0)
        test_x = x[data.test] - x[data.train].mean(0)
        train_x /= np.linalg.norm(train_x, axis=1, keepdims=True)
        test_x /= np.linalg.norm(test_x, axis=1, keepdims=True)
        hyp = list(norm[data.train][(test_x @ train_x.T).argmax(1)])
        own = text_metrics(hyp, [[r] for r in norm[data.test]])
        five_refs = text_metrics(
            hyp,
            [
                [n, *(r for r in all_refs[i] if r != n)]
                for n, i in zip(norm[data.test], test_images, strict=True)
            ],
        )
        metrics = {"chrf": own["chrf"], "bleu": own["bleu"], "wer": own["wer"]}
        metrics |= {"chrf_5refs": five_refs["chrf"], "bleu_5refs": five_refs["bleu"]}
        return metrics, "centred cosine; first caption of the nearest training image"

    frozen, raw = effnet(data, "image"), pixels(data, "image")  # before timing: cached features
    return {
        "nearest neighbour, frozen EfficientNet-Lite0 features": lambda: nearest(frozen),
        "nearest neighbour, pixels 32×32": lambda: nearest(raw),
    }


# -- retrieval --------------------------------------------------------------------------------
def retrieval_sets(data: Data) -> dict[str, Callable[[], tuple]]:
    from bench.retrieval import score as retrieval_score

    image_col, text_col = data.split.labels
    train_frame = data.frame[data.train].reset_index(drop=True)
    test_frame = data.frame[data.test].reset_index(drop=True)
    images = effnet(data, image_col)

    def ridge_map(
        text: np.ndarray | sp.spmatrix, train_rows: np.ndarray, test_rows: np.ndarray
    ) -> tuple[dict, str]:
        y = images[train_rows]
        groups = train_frame[image_col].to_numpy()
        scores: dict[float, list[float]] = {}
        for fit, held in GroupKFold(3).split(text[train_rows], groups=groups):
            for alpha in np.logspace(-1, 4, 6):
                model = Ridge(alpha=alpha).fit(text[train_rows][fit], y[fit])
                found = retrieval_score(
                    y[held], model.predict(text[train_rows][held]), train_frame.iloc[held]
                )
                scores.setdefault(alpha, []).append(found["recall@5"])
        best = max(scores, key=lambda a: np.mean(scores[a]))
        model = Ridge(alpha=best).fit(text[train_rows], y)
        metrics = retrieval_score(images[test_rows], model.predict(text[test_rows]), test_frame)
        return metrics, f"alpha={best:g} (3-fold CV by image, recall@5)"

    train_rows, test_rows = np.flatnonzero(data.train), np.flatnonzero(data.test)

    def tfidf_map() -> tuple[dict, str]:
        texts = data.frame[text_col].fillna("").astype(str)
        vectorizer = TfidfVectorizer(sublinear_tf=True, ngram_range=(1, 2), min_df=2).fit(texts[data.train])
        return ridge_map(vectorizer.transform(texts).toarray(), train_rows, test_rows)

    text = minilm(data, text_col)  # before timing: cached features
    return {
        "ridge map TF-IDF → EfficientNet-Lite0 features": tfidf_map,
        "ridge map MiniLM → EfficientNet-Lite0 features": lambda: ridge_map(text, train_rows, test_rows),
    }


# -- AutoGluon --------------------------------------------------------------------------------
def autogluon_sets(data: Data, time_limit: float, presets: list[str]) -> dict[str, Callable[[], tuple]]:
    task = data.split.task
    problem, metric = {"binary": ("binary", "f1_macro"), "numeric": ("regression", "r2")}[task]
    columns = [c for c, k in data.split.columns.items() if k != "image"]

    def fit(preset: str) -> tuple:
        if not AUTOGLUON_PYTHON.is_file():
            raise RuntimeError(f"{AUTOGLUON_PYTHON} not found: install autogluon.tabular into its own venv")
        out = data.folder / f"autogluon-{preset}.json"
        command = [
            str(AUTOGLUON_PYTHON),
            str(AUTOGLUON_SCRIPT),
            "--table", str(data.split.table),
            "--label", data.split.labels[0],
            "--columns", json.dumps(columns),
            "--problem-type", problem,
            "--eval-metric", metric,
            "--time-limit", str(time_limit),
            "--presets", preset,
            "--model-dir", str(data.folder / f"autogluon-{preset}"),
            "--out", str(out),
        ]  # fmt: skip
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
        result = subprocess.run(command, capture_output=True, text=True, env=env, cwd="/tmp")
        if result.returncode:
            raise RuntimeError(f"AutoGluon failed ({result.returncode}): {result.stderr[-1500:]}")
        found = json.loads(out.read_text())
        note = f"best {found['best_model']} of {found['models']} models; fit {found['fit_seconds']:.0f} s"
        if task == "numeric":
            return np.asarray(found["pred"], float), note
        _, classes = data.target()
        labels = np.array([classes.index(v) for v in found["pred"]])
        proba = np.asarray(found["proba"], float)
        positive = classes.index(found["positive_class"])
        proba = (
            np.stack([1 - proba, proba], axis=1) if positive == 1 else np.stack([proba, 1 - proba], axis=1)
        )
        return proba, note, labels

    return {
        f"AutoGluon TabularPredictor, presets={p}, time_limit={time_limit:g} s (no image columns)": (
            lambda p=p: fit(p)
        )
        for p in presets
    }


# -- driver -----------------------------------------------------------------------------------
def load(split: Split, work: Path) -> Data:
    frame = split.frame()
    return Data(split, frame, (frame["split"] == "train").to_numpy(), work / split.name)


def baseline_fits(data: Data) -> dict[str, Callable[[], tuple]]:
    if data.split.task == "text":
        return caption_sets(data)
    if data.split.task == "retrieval":
        return retrieval_sets(data)
    return predictive_sets(data)


def fit_all(
    data: Data, fits: dict[str, Callable[[], tuple]], save: Callable[[list[dict]], None]
) -> list[dict]:
    """Fit and score each baseline; `save` gets the results so far after each one."""
    results: list[Result] = []
    out: list[dict] = []
    for name, fit in fits.items():
        try:
            timed(name, fit, data, results)
        except RuntimeError as err:
            print(f"  {name}: FAILED {err}", flush=True)
            results.append(Result(name, {}, 0.0, f"failed: {err}"))
        out.append({**asdict(results[-1]), "date": time.strftime("%Y-%m-%d %H:%M")})
        save(out)
    return out


def is_autogluon(result: dict) -> bool:
    return result["baseline"].startswith("AutoGluon")


def shown_metrics(split: Split) -> list[str]:
    return {
        "category": ["accuracy", "macro_f1"],
        "binary": ["macro_f1", "accuracy", "roc_auc"],
        "numeric": ["r2", "rmse", "mae"],
        "text": ["chrf", "bleu", "chrf_5refs", "bleu_5refs"],
        "retrieval": [
            "recall@1",
            "recall@5",
            "recall@10",
            "image_to_caption_recall@5",
            "caption_to_image_recall@5",
        ],
    }[split.task]


def print_table(split: Split, results: list[dict]) -> None:
    names = shown_metrics(split)
    print(f"\n{split.name}\n| baseline | {' | '.join(names)} | fit s | notes |")
    print("|---|" + "---|" * len(names) + "---|---|")
    for r in results:
        cells = " | ".join(f"{r['metrics'][m]:.3f}" if m in r["metrics"] else "—" for m in names)
        print(f"| {r['baseline']} | {cells} | {r['seconds']:.1f} | {r['note']} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", default="", help=f"comma-separated data sets: {', '.join(SPLITS)}")
    parser.add_argument("--work", type=Path, default=WORK, help="work folder (outside the repository)")
    parser.add_argument("--autogluon-time-limit", type=float, default=600.0, help="seconds per AutoGluon fit")
    parser.add_argument(
        "--autogluon-presets", default="medium_quality,best_quality", help="comma-separated presets"
    )
    parser.add_argument("--no-autogluon", action="store_true")
    args = parser.parse_args()
    names = args.only.split(",") if args.only else list(SPLITS)
    path = args.work / "baselines.json"
    saved = json.loads(path.read_text()) if path.is_file() else {}
    splits = {name: make_split(name, args.work) for name in names}
    for name, split in splits.items():  # every scikit-learn baseline first
        data = load(split, args.work)
        print(
            f"\n== {name}: {data.train.sum()} train / {data.test.sum()} test rows; {split.note}", flush=True
        )
        kept = [r for r in saved.get(name, {}).get("results", []) if is_autogluon(r)]

        def save(results: list[dict], name: str = name, data: Data = data, kept: list = kept) -> None:
            saved[name] = {
                "split": {**asdict(data.split), "table": str(data.split.table)},
                "rows": {"train": int(data.train.sum()), "test": int(data.test.sum())},
                "feature_seconds": data.feature_seconds,
                "results": results + kept,
            }
            path.write_text(json.dumps(saved, indent=1))

        fit_all(data, baseline_fits(data), save)
        print_table(split, saved[name]["results"])
    for name in [n for n in names if n in AUTOGLUON_SETS and not args.no_autogluon]:  # then AutoGluon
        data = load(splits[name], args.work)
        print(f"\n== {name}: AutoGluon", flush=True)
        presets = args.autogluon_presets.split(",")
        before = saved[name]["results"]

        def save_ag(results: list[dict], name: str = name, before: list = before) -> None:
            new = {r["baseline"] for r in results}
            saved[name]["results"] = [r for r in before if r["baseline"] not in new] + results
            path.write_text(json.dumps(saved, indent=1))

        fit_all(data, autogluon_sets(data, args.autogluon_time_limit, presets), save_ag)
        print_table(splits[name], saved[name]["results"])
    print(f"\nresults: {path}")


if __name__ == "__main__":
    main()
