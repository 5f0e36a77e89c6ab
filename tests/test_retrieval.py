"""Retrieval runs end to end: train --retrieval, embed, search and zero-shot through the
real `plait` command, and the Python API beside it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from plait.errors import ConfigError, DataError
from plait.predictor import Predictor
from plait.retrieval import Embeddings
from plait.train import fit
from tests.conftest import TINY_CONFIG, TINY_ENCODERS, make_table
from tests.test_cli import plait_in, plait_in_each

CONFIG = {
    "inputs": [
        {"name": "image", "type": "image", "encoder": TINY_ENCODERS["image"]},
        {"name": "caption", "type": "text", "encoder": TINY_ENCODERS["text"]},
    ],
    "outputs": [
        {"name": "match", "columns": ["image", "caption"], "head": {"name": "contrastive", "dim": 16}}
    ],
    **TINY_CONFIG,
    "id_columns": ["id"],
}
CONFIG["trainer"] = {**TINY_CONFIG["trainer"], "epochs": 6}


@pytest.fixture(scope="module")
def retrieval_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(run folder, table): coloured squares against captions naming their colour."""
    folder = tmp_path_factory.mktemp("retrieval")
    make_table(folder / "data").to_csv(folder / "data" / "table.csv", index=False)
    (folder / "config.yaml").write_text(yaml.safe_dump(CONFIG))
    run = folder / "run"
    table = folder / "data" / "table.csv"
    result = plait_in("train", table, "--config", folder / "config.yaml", "--out", run)
    assert result.returncode == 0, result.stderr
    assert "recall@1" in result.stdout
    return run, table


def test_embed_and_search_round_trip_through_the_cli(retrieval_run: tuple[Path, Path], tmp_path: Path):
    run, table = retrieval_run
    frame = pd.read_csv(table)
    out = tmp_path / "images.parquet"
    embedded, as_npy, searched = plait_in_each(
        ["embed", run, table, "--column", "image", "--output", out],
        ["embed", run, table, "--column", "image", "--output", tmp_path / "images.npy"],
        ["search", run, "--index", out, "--query", "a red square number 3", "--top", "5", "--json"],
    )
    assert embedded.returncode == 0, embedded.stderr
    assert "1 empty or unreadable" in embedded.stderr  # row 5 has no image
    saved = Embeddings.load(out)
    assert saved.column == "image" and saved.vectors.shape == (60, 16)
    assert list(saved.rows.columns) == ["row", "id", "image"]
    assert np.isnan(saved.vectors[5]).all()
    usable = np.delete(saved.vectors, 5, axis=0)
    assert np.allclose(np.linalg.norm(usable, axis=1), 1, atol=1e-5)

    # The same vectors from the Python API, and from an .npy file with its rows beside it.
    api = Predictor.load(run).embed(table, "image")
    assert np.allclose(api.vectors[~np.isnan(api.vectors).any(1)], usable, atol=1e-6)
    assert as_npy.returncode == 0, as_npy.stderr
    assert np.allclose(
        np.nan_to_num(Embeddings.load(tmp_path / "images.npy").vectors), np.nan_to_num(saved.vectors)
    )

    assert searched.returncode == 0, searched.stderr
    hits = pd.DataFrame(json.loads(searched.stdout))
    assert hits["rank"].tolist() == [1, 2, 3, 4, 5]
    assert hits["score"].is_monotonic_decreasing
    colours = frame.set_index("id").loc[hits["id"], "colour"]
    assert (colours == "red").all(), hits  # the caption's colour finds images of that colour
    assert 5 not in hits["row"].tolist()  # the missing image is never retrieved


def test_search_an_image_query_against_a_table_of_captions(retrieval_run: tuple[Path, Path]):
    run, table = retrieval_run
    predictor = Predictor.load(run)
    # Query by an image path (resolved against base_dir): the tower is picked by file type.
    hits = predictor.search("images/4.png", table, top=3, base_dir=table.parent)  # image 4 is green
    assert len(hits) == 3 and hits["caption"].str.contains("green").all(), hits
    # Captions repeat in the table (the same text in several rows); hits are distinct.
    assert hits["caption"].is_unique


def test_zero_shot_classifies_images_by_prompt(retrieval_run: tuple[Path, Path], tmp_path: Path):
    run, table = retrieval_run
    result = plait_in(
        "zero-shot", run, table, "--column", "image", "--labels", "red,green,blue",
        "--template", "a {label} square", "--truth", "colour", "--output", tmp_path / "z.csv",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    accuracy = float(result.stdout.split("accuracy")[1].split()[1].strip("│"))
    assert accuracy > 0.8, result.stdout  # chance is 1/3
    preds = pd.read_csv(tmp_path / "z.csv")
    assert {"prob_red", "prob_green", "prob_blue", "predicted"} <= set(preds.columns)
    assert np.allclose(preds[["prob_red", "prob_green", "prob_blue"]].dropna().sum(1), 1, atol=1e-5)


def test_evaluate_reports_recall_in_both_directions(retrieval_run: tuple[Path, Path]):
    run, table = retrieval_run
    result = plait_in("evaluate", run, table, "--json")
    assert result.returncode == 0, result.stderr
    metrics = json.loads(result.stdout)
    for name in ("recall@1", "recall@5", "image_to_caption_median_rank", "caption_to_image_recall@10"):
        assert name in metrics
    assert metrics["recall@10"] > metrics["recall@1"] > 0


def test_retrieval_mistakes_get_one_line(retrieval_run: tuple[Path, Path], table_csv: Path):
    run, table = retrieval_run
    predictor = Predictor.load(run)
    with pytest.raises(ConfigError, match="not a retrieval tower; towers: image, caption"):
        predictor.embed(table, "colour")
    with pytest.raises(DataError, match="query file not found"):
        predictor.search("missing/file.png", table)
    with pytest.raises(ConfigError, match="retrieval run: use embed"):
        predictor.predict(table)
    with pytest.raises(ConfigError, match="the index holds 'image' embeddings, not 'caption'"):
        predictor.search("a red square", predictor.embed(table, "image"), index_column="caption")
    result = plait_in("train", table_csv, "--retrieval", "image,size")
    assert result.returncode == 2 and "towers must be image, text, audio or video" in result.stderr


def test_retrieval_beside_a_label_in_one_run(table_csv: Path, tmp_path: Path):
    config = {**CONFIG, "outputs": [], "trainer": {**CONFIG["trainer"], "epochs": 2}}
    predictor = fit(
        table_csv,
        label="colour",
        config=config,
        retrieval=["image", "caption"],
        out=tmp_path / "run",
        verbose=False,
    )
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())["validation"]
    assert "colour/accuracy" in metrics and "retrieval/recall@1" in metrics
    preds = predictor.predict(table_csv)  # the label is predicted; embeddings come from embed()
    assert "colour" in preds and not any(c.startswith("retrieval") for c in preds)
    assert Predictor.load(tmp_path / "run").embed(table_csv, "caption").vectors.shape == (60, 256)


def test_retrieval_config_errors(table_csv: Path, tmp_path: Path):
    with pytest.raises(ConfigError, match="two or more different columns"):
        fit(table_csv, config=CONFIG, retrieval=["image"], out=tmp_path / "a", verbose=False)
    with pytest.raises(ConfigError, match="named like a column"):
        bad = {**CONFIG, "outputs": [{"name": "image", "columns": ["image", "caption"]}]}
        fit(table_csv, config=bad, out=tmp_path / "b", verbose=False)
    with pytest.raises(ConfigError, match="also labels"):
        fit(table_csv, label="caption", config=CONFIG, out=tmp_path / "c", verbose=False)
