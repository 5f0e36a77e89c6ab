"""fit() through the Python API on tiny tables: every target type, the run folder."""

import json
from pathlib import Path

import pandas as pd
import pytest

import plait
from plait.errors import ConfigError, DataError, PlaitError
from tests.conftest import make_table, tiny_config


def run_files(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()}


def test_classification_run_folder_and_reload(table_csv: Path, tmp_path: Path):
    out = tmp_path / "run"
    predictor = plait.fit(table_csv, label="colour", config=tiny_config(), out=out, verbose=False)
    assert predictor.run_dir == out
    assert run_files(out) == {
        "config.yaml",
        "processors.json",
        "model.safetensors",
        "metrics.json",
        "log.csv",
        "plait.json",
        "summary.json",
        "report.html",
    }
    assert not list(tmp_path.glob(".run.tmp-*"))  # staging folder gone
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["validation"]) == {"accuracy", "macro_f1", "balanced_accuracy"}
    assert metrics["epochs"] == 3
    assert (
        len(metrics["epoch_seconds"]) == 3 and 0 < sum(metrics["epoch_seconds"]) <= metrics["train_seconds"]
    )
    log = pd.read_csv(out / "log.csv")
    assert list(log["epoch"]) == [1, 2, 3] and "val_loss" in log

    loaded = plait.load(out)
    a, b = predictor.predict(table_csv), loaded.predict(table_csv)
    pd.testing.assert_frame_equal(a, b)
    assert list(a.columns[:2]) == ["id", "colour"]
    assert {"colour_prob_red", "colour_prob_green", "colour_prob_blue"} <= set(a.columns)
    assert list(a["id"]) == [f"row{i}" for i in range(60)]  # input order kept
    # The label is visible in the image colour and the text: a few epochs learn it.
    assert loaded.evaluate(table_csv)["accuracy"] > 0.7  # chance is 1/3


def test_binary_and_regression_targets(table_csv: Path, tmp_path: Path):
    binary = plait.fit(table_csv, label="is_red", config=tiny_config(), out=tmp_path / "b", verbose=False)
    metrics = binary.evaluate(table_csv)
    assert set(metrics) == {"accuracy", "macro_f1", "balanced_accuracy", "f1", "roc_auc"}
    preds = binary.predict(table_csv)
    assert set(preds["is_red"]) <= {"yes", "no"}
    assert (preds["is_red_prob_yes"] + preds["is_red_prob_no"]).round(6).eq(1).all()
    # Decided at the threshold tuned for accuracy on the validation rows, as metrics.json says.
    cut = binary.targets["is_red"].threshold_
    assert json.loads((tmp_path / "b" / "metrics.json").read_text())["thresholds"] == {"is_red": {"yes": cut}}
    assert (preds["is_red"] == preds["is_red_prob_yes"].ge(cut).map({True: "yes", False: "no"})).all()

    config = tiny_config()
    config["trainer"] = {**config["trainer"], "epochs": 8}
    reg = plait.fit(table_csv, label="price", config=config, out=tmp_path / "r", verbose=False)
    metrics = reg.evaluate(table_csv)
    assert set(metrics) == {"rmse", "mae", "r2"}
    prices = pd.read_csv(table_csv)["price"]
    assert metrics["rmse"] < prices.std()  # better than predicting the mean
    assert reg.predict(table_csv)["price"].between(0, 50).all()  # in the label's units


def test_several_targets_at_once(table_csv: Path, tmp_path: Path):
    config = tiny_config(outputs=[{"name": "colour"}, {"name": "price", "loss_weight": 0.5}])
    predictor = plait.fit(table_csv, config=config, out=tmp_path / "m", verbose=False)
    metrics = predictor.evaluate(table_csv)
    assert {"colour/accuracy", "price/rmse"} <= set(metrics)


def test_dataframe_input_and_inferred_config(tmp_path: Path):
    frame = make_table(tmp_path, rows=30)
    predictor = plait.fit(
        frame,
        label="colour",
        config={"trainer": {"epochs": 1, "progress": False}},
        base_dir=tmp_path,
        out=tmp_path / "df",
        verbose=False,
    )
    assert [i.name for i in predictor.config.inputs] == [
        "image",
        "caption",
        "size",
        "shop",
        "is_red",
        "price",
    ]
    assert predictor.config.id_columns == ["id"]
    assert len(predictor.predict(frame, base_dir=tmp_path)) == 30


def test_missing_modalities_train_and_predict(table_dir: Path, tmp_path: Path):
    frame = pd.read_csv(table_dir / "table.csv")
    frame.loc[::3, "image"] = None
    frame.loc[1::3, "caption"] = ""
    frame.to_csv(table_dir / "holes.csv", index=False)
    predictor = plait.fit(
        table_dir / "holes.csv", label="colour", config=tiny_config(), out=tmp_path / "holes", verbose=False
    )
    preds = predictor.predict(table_dir / "holes.csv")
    assert len(preds) == 60 and preds["colour"].notna().all()


def test_save_copies_the_run(table_csv: Path, tmp_path: Path):
    predictor = plait.fit(
        table_csv,
        label="colour",
        config=tiny_config(trainer={"epochs": 1, "progress": False}),
        out=tmp_path / "a",
        verbose=False,
    )
    predictor.save(tmp_path / "b")
    assert run_files(tmp_path / "b") == run_files(tmp_path / "a")
    with pytest.raises(PlaitError, match="already exists"):
        predictor.save(tmp_path / "b")


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"label": "nope"}, DataError, "unknown label column 'nope'"),
        (
            {"label": "colour", "config": {"inputs": [{"name": "caption", "encoder": "transformer"}]}},
            ConfigError,
            "unknown encoder 'transformer'.*Valid encoders: audio_cnn, audio_cnn1d, audio_gru, bag, cnn",
        ),
        (
            {"label": "colour", "config": {"inputs": [{"name": "caption", "encoder": "cnn"}]}},
            ConfigError,
            "encoder 'cnn' does not take text columns; valid for text: bag, gru, hf_text, lstm, minilm",
        ),
        (
            {
                "label": "colour",
                "config": {"inputs": [{"name": "caption", "encoder": {"name": "gru", "size": 3}}]},
            },
            ConfigError,
            "unknown parameter.*size; valid: embed_dim",
        ),
        (
            {
                "label": "colour",
                "config": {
                    "preset": "fast",  # the word-level text processor
                    "inputs": [{"name": "caption", "preprocessing": {"lower": True}}],
                },
            },
            ConfigError,
            "unknown text preprocessing option.*lower",
        ),
    ],
)
def test_user_errors_leave_nothing_behind(table_csv: Path, tmp_path: Path, kwargs, error, match):
    with pytest.raises(error, match=match):
        plait.fit(table_csv, out=tmp_path / "run", verbose=False, **kwargs)
    assert list(tmp_path.iterdir()) == [table_csv.parent]


def test_failure_during_training_leaves_no_folder(table_csv: Path, tmp_path: Path, monkeypatch):
    from plait import system

    def explode(self, batch, batch_idx):
        raise RuntimeError("boom")

    monkeypatch.setattr(system.MultimodalSystem, "training_step", explode)
    with pytest.raises(RuntimeError, match="boom"):
        plait.fit(table_csv, label="colour", config=tiny_config(), out=tmp_path / "run", verbose=False)
    assert list(tmp_path.iterdir()) == [table_csv.parent]


@pytest.mark.parametrize("fusion", plait.list_fusions())
def test_every_fusion_trains_end_to_end(table_csv: Path, tmp_path: Path, fusion: str):
    predictor = plait.fit(
        table_csv, label="colour", config=tiny_config(fusion=fusion), out=tmp_path / fusion, verbose=False
    )
    assert predictor.config.fusion.name == fusion
    reloaded = plait.load(tmp_path / fusion)
    pd.testing.assert_frame_equal(predictor.predict(table_csv), reloaded.predict(table_csv))
    assert reloaded.evaluate(table_csv)["accuracy"] > 0.4  # chance is 1/3


def test_learned_missing_embedding_trains_saves_and_loads(table_dir: Path, tmp_path: Path):
    frame = pd.read_csv(table_dir / "table.csv")
    frame.loc[::4, "caption"] = ""
    frame.to_csv(table_dir / "holes.csv", index=False)
    config = tiny_config(missing_modality="learned", fusion="attention")
    config["trainer"] = {**config["trainer"], "modality_dropout": 0.2}
    predictor = plait.fit(
        table_dir / "holes.csv", label="colour", config=config, out=tmp_path / "m", verbose=False
    )
    assert predictor.model.missing is not None
    reloaded = plait.load(tmp_path / "m")
    pd.testing.assert_frame_equal(
        predictor.predict(table_dir / "holes.csv"), reloaded.predict(table_dir / "holes.csv")
    )


@pytest.mark.parametrize("combine", ["mean", "stacking"])
def test_multilabel_lists_in_parquet_with_late_fusion(table_dir: Path, tmp_path: Path, combine: str):
    from tests.conftest import add_tags

    frame = add_tags(pd.read_csv(table_dir / "table.csv"))
    frame["tags"] = [[] if t == "[]" else t.split("|") for t in frame["tags"]]  # Parquet lists
    table = table_dir / "tags.parquet"
    frame.to_parquet(table)
    config = tiny_config(fusion={"name": "late", "combine": combine})  # type inferred from the lists
    predictor = plait.fit(table, label="tags", config=config, out=tmp_path / "r", verbose=False)
    assert predictor.config.outputs[0].type == "multilabel"
    reloaded = plait.load(tmp_path / "r")
    pd.testing.assert_frame_equal(predictor.predict(table), reloaded.predict(table))
    assert set(reloaded.evaluate(table)) == {"micro_f1", "macro_f1", "mean_ap", "subset_accuracy"}

    frame.at[3, "tags"] = ["north", "purple"]
    frame.at[8, "tags"] = ["teal"]
    with pytest.raises(DataError, match=r"labels not seen in training in rows 4, 9: 'purple', 'teal'"):
        reloaded.evaluate(frame, base_dir=table_dir)


@pytest.mark.parametrize(
    ("output", "cell", "error", "match"),
    [
        ({"preprocessing": {"sep": ";"}}, None, ConfigError, "unknown multilabel preprocessing option.*sep"),
        ({"head": {"name": "multilabel", "pos_weight": "often"}}, None, ConfigError, "pos_weight must be"),
        ({"head": "classification"}, None, ConfigError, "head 'classification' does not take multilabel"),
        ({}, float("nan"), DataError, r"label column 'tags' is empty in 1 of 60 rows \(rows 3\)"),
    ],
)
def test_multilabel_user_errors(table_dir: Path, tmp_path: Path, output, cell, error, match):
    from tests.conftest import add_tags

    frame = add_tags(pd.read_csv(table_dir / "table.csv"))
    if cell is not None:
        frame.loc[2, "tags"] = cell
    config = tiny_config(outputs=[{"name": "tags", "type": "multilabel", **output}])
    with pytest.raises(error, match=match):
        plait.fit(frame, config=config, out=tmp_path / "run", base_dir=table_dir, verbose=False)
    assert not (tmp_path / "run").exists()
