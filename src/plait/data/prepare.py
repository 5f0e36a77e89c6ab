"""From a table to what training consumes: fitted processors and datasets.

Processors are fitted on the training rows only (class lists on every labelled row);
an in-memory table is split and transformed once, a folder of Parquet shards is
streamed (plait.data.streaming), with types and processors from a sample.
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path
from typing import Any

import pandas as pd

from plait.config import ResolvedConfig, ResolvedInput, ResolvedOutput, input_units, is_tabular_group
from plait.data.datamodule import split_frame
from plait.data.dataset import TableDataset
from plait.data.processors import (
    INPUT_PROCESSORS,
    TARGET_PROCESSORS,
    FeatureProcessor,
    InputProcessor,
    MultilabelTarget,
    PairTarget,
    TabularProcessor,
    TargetProcessor,
)
from plait.data.processors.sound_track import SoundTrackProcessor
from plait.data.processors.targets import check_no_missing
from plait.data.streaming import Shards, StreamingDataset, label_pass, stream_workers
from plait.encoders import ENCODERS
from plait.errors import ConfigError, DataError
from plait.recipe import size_trainer


def trainable_rows(frame: pd.DataFrame, split_column: str | None) -> int:
    """Rows that train or validate: all but a split column's test rows."""
    if split_column is None:
        return len(frame)
    return int((frame[split_column].astype(str).str.strip().str.lower() != "test").sum())


def table_datasets(
    cfg: ResolvedConfig, frame: pd.DataFrame, base_dir: Path
) -> tuple[dict[str, InputProcessor], dict[str, TargetProcessor], dict[str, TableDataset]]:
    """A table that fits in memory: split, fit on the training rows, transform once.
    The trainer settings left "auto" are set on `cfg` first, from the rows that train
    or validate (plait.recipe)."""
    cfg.trainer = size_trainer(cfg.trainer, trainable_rows(frame, cfg.split_column), cfg.preset)
    for out_cfg in cfg.outputs:  # whole-table row numbers, before splitting
        if out_cfg.type != "retrieval":  # a row may lack one tower (that pair sits out)
            check_no_missing(frame[out_cfg.name], out_cfg.name)
    train_df, val_df, test_df = split_frame(
        frame, cfg.split_column, cfg.trainer.val_fraction, cfg.seed, split_group(cfg)
    )
    processors, targets = fit_processors(cfg, train_df, base_dir, all_labels=frame, strict=False)

    def dataset(part: pd.DataFrame, name: str, on_bad_row: str, labelled: bool = True) -> TableDataset:
        return TableDataset.from_frame(
            part,
            processors,
            targets if labelled else None,
            training=name == "train",
            base_dir=base_dir,
            on_bad_row=on_bad_row,
            cache=cfg.cache,
        )

    # With on_bad_row="error" the error names the table's first bad row, whichever part
    # holds it: the held-out rows (few) are read first with bad cells kept, then the
    # training rows before their first bad one; each part is read in row order.
    strict = cfg.on_bad_row == "error"
    parts = {"train": train_df, "val": val_df, "test": test_df}
    held = {
        name: dataset(part, name, "missing" if strict else cfg.on_bad_row)
        for name, part in parts.items()
        if name != "train" and len(part)
    }
    bad = [parts[name].index[row] for name, ds in held.items() for row in ds.bad_rows]
    if strict and bad:
        earlier = train_df[train_df.index < min(bad)]
        if len(earlier):
            dataset(earlier, "train", "error", labelled=False)  # raises at a bad row before min(bad)
        dataset(frame.loc[[min(bad)]], "val", "error", labelled=False)  # else raises at min(bad)
    datasets = {"train": dataset(train_df, "train", cfg.on_bad_row), **held}
    return processors, targets, datasets


def stream_datasets(
    cfg: ResolvedConfig,
    shards: Shards,
    sample: pd.DataFrame,
    taken: list[tuple[int, int]],
    declared: Collection[str] = (),
) -> tuple[dict[str, InputProcessor], dict[str, TargetProcessor], dict[str, StreamingDataset]]:
    """A folder of Parquet shards: one pass over the label and split columns (row counts,
    every class), input processors fitted on the sample's training rows, parts streamed.
    `declared`: columns whose type the user gave (kept even if the full table disagrees).
    The "auto" trainer settings are set on `cfg` from the whole table's row count."""
    cfg.trainer = size_trainer(cfg.trainer, shards.rows, cfg.preset)
    refused = [o.name for o in cfg.outputs if o.type in ("retrieval", "text", "boxes", "box")]
    if refused:
        raise ConfigError(
            f"a streamed table (a folder of Parquet shards) trains classification, regression and "
            f"multi-label targets; {', '.join(refused)} need(s) one table file that fits in memory"
        )
    tc = cfg.trainer
    names = [o.name for o in cfg.outputs]
    found = label_pass(shards, names, cfg.split_column, tc.val_fraction, cfg.seed, check_missing=names)
    for o in cfg.outputs:  # the sample saw two values; the whole table has more
        if o.type == "binary" and len(found.labels[o.name]) > 2 and o.name not in declared:
            o.type = "category"
    parts = shards.sample_parts(sample, taken, cfg.split_column, tc.val_fraction, cfg.seed)
    train_sample = sample[parts == 0]
    if train_sample.empty:
        raise DataError(
            f"the sample of {shards.source} holds no training rows; raise trainer.stream_sample_rows"
        )
    processors, targets = fit_processors(cfg, train_sample, shards.base_dir)
    for o in cfg.outputs:  # class lists from every label in the table, not the sample's
        if o.type in ("category", "binary", "multilabel"):
            proc = make_target(o)
            targets[o.name] = proc.fit(found.labels[o.name], o.name)
            if isinstance(proc, MultilabelTarget):
                proc.fit_frequencies(train_sample[o.name], o.name)
    workers = stream_workers(tc.num_workers)
    datasets = {
        part: StreamingDataset(
            shards,
            part,
            processors,
            targets,
            tc.batch_size if part == "train" else tc.eval_batch_size,
            training=part == "train",
            seed=cfg.seed,
            val_fraction=tc.val_fraction,
            split_column=cfg.split_column,
            on_bad_row=cfg.on_bad_row,
            buffer_rows=tc.stream_buffer_rows,
            workers=workers,
            cache=cfg.cache,
        )
        for part in ("train", "val", "test")
        if shards.counts[part].any()
    }
    if "val" not in datasets:
        raise DataError(f"table {shards.source} has no validation rows; raise trainer.val_fraction")
    return processors, targets, datasets


def split_group(cfg: ResolvedConfig) -> str | None:
    """Retrieval: validation rows are carved by item (the first tower's cell), so no
    image is both trained on and used to stop training."""
    return next((o.columns[0] for o in cfg.outputs if o.type == "retrieval"), None)


def fit_processors(
    cfg: ResolvedConfig,
    train: pd.DataFrame,
    base_dir: Path,
    all_labels: pd.DataFrame | None = None,
    strict: bool = True,
) -> tuple[dict[str, InputProcessor], dict[str, TargetProcessor]]:
    """Fit one processor per input on the training split only; the columns of a media
    group share one processor (one vocabulary, one normalisation) as they share weights.

    `strict=False` leaves bad cells out of the statistics whatever `on_bad_row` says,
    for a caller whose transforms then report them in row order (a fit reads a random
    sample of the files, so its first bad cell is not the table's).

    Class lists come from `all_labels` (every labelled row) when given: a rare class
    that happens to fall only in the validation split still gets an output, and no
    input statistics leak. Numeric targets are scaled with training statistics.
    """
    processors: dict[str, InputProcessor] = {}
    by_group: dict[str, InputProcessor] = {}
    for key, members in input_units(cfg).items():
        group = members[0].group
        if group not in by_group:
            on_bad = cfg.on_bad_row if strict else "missing"
            by_group[group] = _fit_input(cfg, train, base_dir, key, members, on_bad)
        processors[key] = by_group[group]
    labels = train if all_labels is None else all_labels
    targets = {}
    for o in cfg.outputs:
        proc = make_target(o)
        targets[o.name] = proc.fit(proc.select(train if o.type == "numeric" else labels, o.name), o.name)
        if isinstance(proc, MultilabelTarget):  # label rates (for pos_weight) from training rows only
            proc.fit_frequencies(train[o.name], o.name)
    return processors, targets


def make_target(out: ResolvedOutput) -> TargetProcessor:
    """An unfitted target processor with the output's options."""
    if out.type == "retrieval":
        return PairTarget(out.columns)
    return TARGET_PROCESSORS[out.type].create(out.preprocessing, out.name)


def _fit_input(
    cfg: ResolvedConfig,
    train: pd.DataFrame,
    base_dir: Path,
    key: str,
    members: list[ResolvedInput],
    on_bad_row: str,
) -> InputProcessor:
    if is_tabular_group(key, members):  # one processor, many columns
        numeric = {m.name: m.preprocessing for m in members if m.type == "numeric"}
        category = {m.name: m.preprocessing for m in members if m.type == "category"}
        proc: InputProcessor = TabularProcessor(numeric, category)
        return proc.fit(proc.select(train, key), key, on_bad_row=on_bad_row)
    group = [c for c in cfg.inputs if c.group == members[0].group]
    options: dict[str, Any] = {}  # the group's preprocessing: the union of its columns' settings
    for col in group:
        for name, value in col.preprocessing.items():
            if options.setdefault(name, value) != value:
                raise ConfigError(
                    f"the columns of group {col.group!r} share an encoder but set {name} to "
                    f"{options[name]!r} and {value!r}; give them the same, or separate groups"
                )
    proc = _input_processor(members[0], options, key)
    proc.base_dir = base_dir
    values = pd.concat([proc.select(train, c.name) for c in group])
    # Unreadable files are skipped when fitting statistics; transforming each column
    # afterwards reports them with their own column name (or counts them).
    on_bad = on_bad_row if len(group) == 1 else "missing"
    return proc.fit(values, key, on_bad_row=on_bad)


def _input_processor(column: ResolvedInput, options: dict[str, Any], key: str) -> InputProcessor:
    """The processor a column's encoder needs: its type's, or the one a pretrained
    encoder asks for (its tokenizer, its image size and normalisation, cached features)."""
    spec = column.encoder
    wants = getattr(ENCODERS.get(spec.name).builder, "preprocessing", None)
    kind, defaults = wants(spec.params) if wants is not None else (column.type, {})
    if column.sound_of is not None:  # a video's sound track: decoded from the clip
        if kind != "audio":
            raise ConfigError(
                f"input {key!r} (the sound track of {column.sound_of!r}) needs an audio encoder that "
                f"reads spectrograms or waveforms; {spec.name} would cache features"
            )
        return SoundTrackProcessor.create({**defaults, **options}, key)
    if wants is None:
        return INPUT_PROCESSORS[column.type].create(options, key)
    if kind == "features":  # the user's options refine the base preprocessing
        defaults["base"]["params"] = {**defaults["base"]["params"], **options}
        return FeatureProcessor.create(defaults, key)
    return INPUT_PROCESSORS[kind].create({**defaults, **options}, key)
