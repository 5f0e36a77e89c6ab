"""Using a retrieval run: embed a column, search an index, classify zero-shot.

A retrieval run has a contrastive head (heads/contrastive.py) whose towers are input
columns. Embedding a column runs only that column's encoder and projection, so a
table of captions needs no images. Vectors are L2-normalised; a row whose cell is
empty (or unreadable, with on_bad_row missing/skip) gets NaN and is never retrieved.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from plait.atomic import atomic_path
from plait.data.datamodule import make_loader
from plait.data.dataset import TableDataset
from plait.data.schema import check_columns
from plait.data.table import AUDIO_EXTENSIONS, IMAGE_EXTENSIONS, VIDEO_EXTENSIONS, read_table
from plait.errors import ConfigError, DataError
from plait.heads.contrastive import ContrastiveHead
from plait.inference import Run

EMBEDDING_SUFFIXES = (".parquet", ".pq", ".npy")
_META_KEY = b"plait.embeddings"


@dataclass
class Embeddings:
    """One column's embeddings: `vectors` (N, dim) float32 and, per row, `rows`: the
    row's position in its table, the run's id columns, and the cell (path or text)."""

    column: str
    vectors: np.ndarray
    rows: pd.DataFrame

    def distinct(self) -> Embeddings:
        """One row per distinct cell (an image listed with five captions counts once),
        leaving out rows that have no embedding."""
        usable = ~np.isnan(self.vectors).any(1)
        keep = usable & ~self.rows[self.column].astype(str).duplicated().to_numpy()
        return Embeddings(self.column, self.vectors[keep], self.rows[keep].reset_index(drop=True))

    def save(self, path: str | Path) -> Path:
        """Parquet (rows + an `embedding` list column) or .npy (the matrix, with the
        rows in `<file>.rows.csv` beside it). Written atomically."""
        path = Path(path)
        suffix = path.suffix.lower()
        if suffix not in EMBEDDING_SUFFIXES:
            raise ConfigError(f"--output must end in .parquet or .npy, got {path.name!r}")
        path.parent.mkdir(parents=True, exist_ok=True)
        if suffix == ".npy":
            with atomic_path(path) as tmp:
                np.save(tmp, self.vectors, allow_pickle=False)
            with atomic_path(rows_file(path)) as tmp:
                self.rows.assign(column=self.column).to_csv(tmp, index=False)
            return path
        frame = self.rows.assign(embedding=list(self.vectors))
        table = pa.Table.from_pandas(frame, preserve_index=False)
        meta = {**(table.schema.metadata or {}), _META_KEY: json.dumps({"column": self.column}).encode()}
        with atomic_path(path) as tmp:
            pq.write_table(table.replace_schema_metadata(meta), tmp)
        return path

    def missing(self) -> int:
        """Rows with no embedding (an empty or unreadable cell; NaN in `vectors`)."""
        return int(np.isnan(self.vectors).any(1).sum())

    @classmethod
    def load(cls, path: str | Path) -> Embeddings:
        path = Path(path)
        if not path.is_file():
            raise DataError(f"embeddings file not found: {path}")
        if path.suffix.lower() == ".npy":
            listed = rows_file(path)
            if not listed.is_file():
                raise DataError(f"{path} has no {listed.name} beside it; write it with plait embed")
            rows = pd.read_csv(listed)
            column = str(rows.pop("column").iloc[0])
            return cls(column, np.load(path, allow_pickle=False).astype(np.float32), rows)
        table = pq.read_table(path)
        meta = (table.schema.metadata or {}).get(_META_KEY)
        if meta is None:
            raise DataError(f"{path} is not an embeddings file written by plait embed")
        frame = table.to_pandas()
        vectors = np.stack(frame.pop("embedding").to_numpy()).astype(np.float32)
        return cls(json.loads(meta)["column"], vectors, frame)


def is_embeddings_file(path: str | Path) -> bool:
    path = Path(path)
    if path.suffix.lower() == ".npy":
        return True
    if path.suffix.lower() not in (".parquet", ".pq") or not path.is_file():
        return False
    return _META_KEY in (pq.read_schema(path).metadata or {})


def contrastive_head(run: Run) -> ContrastiveHead:
    heads = [h for h in run.model.heads.values() if isinstance(h, ContrastiveHead)]
    if not heads:
        raise ConfigError("this run has no retrieval output; train one with --retrieval COL_A,COL_B")
    return heads[0]


def _check_tower(head: ContrastiveHead, column: str) -> None:
    if column not in head.towers:
        raise ConfigError(f"column {column!r} is not a retrieval tower; towers: {', '.join(head.towers)}")


@torch.inference_mode()
def embed_frame(run: Run, frame: pd.DataFrame, column: str, base_dir: Path) -> np.ndarray:
    """(N, dim) float32 unit vectors of `frame[column]`; NaN rows where the cell is empty."""
    head = contrastive_head(run)
    _check_tower(head, column)
    check_columns(frame, [column], "input", needed=True)
    on_bad = "error" if run.config.on_bad_row == "error" else "missing"
    processors = {column: run.processors[column]}
    dataset = TableDataset.from_frame(frame, processors, base_dir=base_dir, on_bad_row=on_bad)
    if dataset.bad_rows:
        warnings.warn(
            f"{len(dataset.bad_rows)} unusable cell(s) in {column!r} left without embedding", stacklevel=3
        )
    encoder = run.model.encoders[run.model.inputs[column]]
    parts = []
    for batch in make_loader(dataset, run.config.trainer.eval_batch_size, shuffle=False):
        z = head.embed(column, encoder(batch.inputs[column]).pooled)  # (B, dim)
        parts.append(torch.where(batch.present[column].unsqueeze(1), z, torch.nan))
    return torch.cat(parts).float().numpy()


def embed(
    run: Run, data: str | Path | pd.DataFrame, column: str, base_dir: str | Path | None = None
) -> Embeddings:
    table = read_table(data, base_dir)
    vectors = embed_frame(run, table.frame, column, table.base_dir)
    ids = [c for c in run.config.id_columns if c in table.frame.columns and c != column]
    rows = table.frame[ids + [column]].copy()
    rows.insert(0, "row", np.arange(len(rows)))
    return Embeddings(column, vectors, rows.reset_index(drop=True))


def search(
    run: Run,
    queries: str | list[str],
    index: str | Path | pd.DataFrame | Embeddings,
    top: int = 10,
    query_column: str | None = None,
    index_column: str | None = None,
    base_dir: str | Path | None = None,
) -> pd.DataFrame:
    """The `top` nearest distinct index items per query (text, or a path to a media
    file). `index`: a table (its `index_column` is embedded now) or embeddings from
    `embed` (in memory or a file). One row per hit: query, rank, score (cosine), row,
    the id columns and the item."""
    if top < 1:
        raise ConfigError(f"--top must be at least 1, got {top}")
    head = contrastive_head(run)
    queries = [queries] if isinstance(queries, str) else list(queries)
    if not queries:
        raise ConfigError("no query given")
    folder = Path(base_dir or ".")
    query_column = query_column or _query_column(run, head, queries[0], folder)
    items = _index(run, head, index, query_column, index_column, base_dir).distinct()
    vectors = embed_frame(run, pd.DataFrame({query_column: queries}), query_column, folder.resolve())
    empty = [q for q, v in zip(queries, vectors, strict=True) if np.isnan(v).any()]
    if empty:
        raise DataError(f"query {empty[0]!r} is empty and cannot be embedded")
    scores = vectors @ items.vectors.T  # (Q, I) cosine similarities
    order = np.argsort(-scores, axis=1, kind="stable")[:, :top]
    hits = []
    for q, query in enumerate(queries):
        found = items.rows.iloc[order[q]].copy()
        found.insert(0, "score", scores[q, order[q]])
        found.insert(0, "rank", np.arange(1, len(found) + 1))
        found.insert(0, "query", query)
        hits.append(found)
    return pd.concat(hits, ignore_index=True)


def zero_shot(
    run: Run,
    data: str | Path | pd.DataFrame,
    column: str,
    labels: list[str],
    template: str = "a photo of a {label}",
    text_column: str | None = None,
    base_dir: str | Path | None = None,
) -> pd.DataFrame:
    """Classify `column`'s items among `labels` with no training: each label becomes
    a prompt (`template`), embedded by the text tower; the probabilities are a softmax
    over the items' similarities to the prompts at the learned temperature."""
    head = contrastive_head(run)
    _check_tower(head, column)
    labels = list(dict.fromkeys(str(v).strip() for v in labels if str(v).strip()))
    if len(labels) < 2:
        raise ConfigError(f"zero-shot classification needs two or more labels, got {labels}")
    if "{label}" not in template:
        raise ConfigError(f"the template must contain {{label}}, got {template!r}")
    text_column = text_column or _only(run, head, "text", exclude=column, option="--text-column")
    prompts = pd.DataFrame({text_column: [template.replace("{label}", v) for v in labels]})
    prompt_vectors = embed_frame(run, prompts, text_column, Path(".").resolve())  # (C, dim)
    items = embed(run, data, column, base_dir)
    logits = torch.from_numpy(items.vectors @ prompt_vectors.T) * head.scale.detach()  # (N, C)
    probs = logits.softmax(1).numpy()
    result = items.rows.copy()
    usable = ~np.isnan(items.vectors).any(1)
    result["predicted"] = [labels[i] if ok else None for i, ok in zip(probs.argmax(1), usable, strict=True)]
    for i, label in enumerate(labels):
        result[f"prob_{label}"] = probs[:, i]
    return result


def zero_shot_accuracy(result: pd.DataFrame, data: str | Path, truth: str) -> dict[str, float]:
    """Accuracy of `zero_shot`'s predictions against the table's `truth` column, over the
    rows it could classify, and their count."""
    frame = read_table(data).frame
    if truth not in frame.columns:
        raise DataError(f"--truth column {truth!r} not in {data}; columns: {', '.join(frame.columns)}")
    scored = result["predicted"].notna()
    right = (result["predicted"][scored] == frame[truth].astype(str).str.strip()[scored]).mean()
    return {"accuracy": float(right), "rows": float(scored.sum())}


def _query_column(run: Run, head: ContrastiveHead, query: str, folder: Path) -> str:
    """The tower a query belongs to: by its file type when it names a file, else text."""
    lower = query.strip().lower()
    modality = "text"
    if lower.endswith(IMAGE_EXTENSIONS + AUDIO_EXTENSIONS + VIDEO_EXTENSIONS):
        if not (folder / query.strip()).is_file():
            raise DataError(f"query file not found: {folder / query.strip()}")
        kinds = {"image": IMAGE_EXTENSIONS, "audio": AUDIO_EXTENSIONS, "video": VIDEO_EXTENSIONS}
        modality = next(k for k, extensions in kinds.items() if lower.endswith(extensions))
    return _only(run, head, modality, exclude=None, option="--query-column")


def _only(run: Run, head: ContrastiveHead, modality: str, exclude: str | None, option: str) -> str:
    types = {i.name: i.type for i in run.config.inputs}
    found = [t for t in head.towers if types.get(t) == modality and t != exclude]
    if len(found) != 1:
        raise ConfigError(
            f"{len(found)} {modality} towers fit; pass {option} (towers: {', '.join(head.towers)})"
        )
    return found[0]


def _index(
    run: Run,
    head: ContrastiveHead,
    index: str | Path | pd.DataFrame | Embeddings,
    query_column: str,
    index_column: str | None,
    base_dir: str | Path | None,
) -> Embeddings:
    if isinstance(index, Embeddings):
        items = index
    elif not isinstance(index, pd.DataFrame) and is_embeddings_file(index):
        items = Embeddings.load(index)
    else:
        if index_column is None:
            others = [t for t in head.towers if t != query_column]
            if len(others) != 1:
                raise ConfigError(f"pass --index-column (towers: {', '.join(head.towers)})")
            index_column = others[0]
        return embed(run, index, index_column, base_dir)
    if index_column is not None and items.column != index_column:
        raise ConfigError(f"the index holds {items.column!r} embeddings, not {index_column!r}")
    _check_tower(head, items.column)
    return items


def rows_file(path: Path) -> Path:
    return path.with_name(path.name + ".rows.csv")


def embedding_files(path: Path) -> list[Path]:
    """The files `Embeddings.save(path)` writes: a .npy file has its rows beside it."""
    return [path, rows_file(path)] if path.suffix.lower() == ".npy" else [path]
