"""Presets (plait.presets), recipes sized to the data (plait.recipe) and the time
limit (plait.budget): resolution, precedence, and training that stops in budget."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

import plait.presets
from plait.budget import format_seconds
from plait.config import ComponentSpec, PlaitConfig, TrainerConfig, parse_config, parse_duration
from plait.data.schema import resolve_config
from plait.errors import ConfigError
from plait.recipe import size_trainer, val_fraction
from plait.system import MultimodalSystem
from plait.train import fit
from tests.conftest import make_table, tiny_config
from tests.test_cli import plait_many


def encoders(cfg: PlaitConfig) -> dict[str, str]:
    return {i.name: i.encoder.name for i in cfg.inputs}  # type: ignore[union-attr]


@pytest.fixture
def frame(tmp_path: Path):
    return make_table(tmp_path, rows=12)


# -- presets ---------------------------------------------------------------------------
def test_each_preset_chooses_the_encoders(frame, monkeypatch):
    monkeypatch.setattr(plait.presets, "missing_pretrained", lambda: ())
    fast = resolve_config(frame, PlaitConfig(preset="fast"), ["colour"])
    assert encoders(fast) | {} == {**encoders(fast), "image": "cnn", "caption": "gru", "size": "tabular_mlp"}
    for preset in ("medium", "best"):
        cfg = resolve_config(frame, PlaitConfig(preset=preset), ["colour"])
        assert (encoders(cfg)["image"], encoders(cfg)["caption"]) == ("efficientnet_lite0", "minilm")
        assert encoders(cfg)["size"] == "tabular_mlp" and cfg.preset == preset
        assert cfg.inputs[0].encoder.params == {"dropout": 0.5}  # type: ignore[union-attr]  # frozen features overfit
    assert PlaitConfig().preset == "medium"  # the default


def test_medium_trains_the_candidates_where_the_table_has_numbers_or_categories(frame, monkeypatch):
    monkeypatch.setattr(plait.presets, "missing_pretrained", lambda: ())
    both, best = ["neural", "lightgbm", "linear"], ["neural", "lightgbm", "linear", "neural_attention"]
    media = frame[["image", "caption", "colour"]]  # no numeric or category column
    chosen = {
        (preset, table): resolve_config(data, PlaitConfig(preset=preset), ["colour"]).candidates
        for preset in ("fast", "medium", "best")
        for table, data in (("with numbers", frame), ("media only", media))
    }
    assert chosen == {
        ("fast", "with numbers"): ["neural"],
        ("fast", "media only"): ["neural"],
        ("medium", "with numbers"): both,
        ("medium", "media only"): ["neural"],
        ("best", "with numbers"): best,  # and a second network, with the attention fusion
        ("best", "media only"): best,
    }
    listed = resolve_config(frame, PlaitConfig(preset="medium", candidates=["neural"]), ["colour"])
    assert listed.candidates == ["neural"]  # the config's list wins over the preset's
    cut = parse_config({"inputs": [{"name": "image"}, {"name": "caption"}]})
    assert resolve_config(frame, cut, ["colour"]).candidates == ["neural"]  # only the listed inputs count


def test_config_choices_win_over_the_preset(frame, monkeypatch):
    monkeypatch.setattr(plait.presets, "missing_pretrained", lambda: ())
    config = parse_config(
        {
            "preset": "medium",
            "encoders": {"text": {"name": "gru", "hidden_dim": 16}},  # one modality, every column kept
            "inputs": [],
        }
    )
    cfg = resolve_config(frame, config, ["colour"])
    assert encoders(cfg)["caption"] == "gru" and cfg.inputs[1].encoder.params == {"hidden_dim": 16}  # type: ignore[union-attr]
    assert encoders(cfg)["image"] == "efficientnet_lite0"
    assert {"image", "caption", "size", "shop"} <= set(encoders(cfg))
    named = parse_config({"inputs": [{"name": "image", "encoder": "cnn"}]})
    assert encoders(resolve_config(frame, named, ["colour"])) == {"image": "cnn"}


def test_without_the_pretrained_extra_medium_falls_back_to_fast_with_a_note(frame, monkeypatch):
    monkeypatch.setattr(plait.presets, "missing_pretrained", lambda: ("timm",))
    with pytest.warns(UserWarning, match=r"timm is not installed .*training with preset fast instead"):
        cfg = resolve_config(frame, PlaitConfig(preset="medium"), ["colour"])
    assert cfg.preset == "fast" and encoders(cfg)["image"] == "cnn"


def test_an_unknown_preset_lists_the_presets():
    with pytest.raises(ConfigError, match="preset: Input should be 'fast', 'medium' or 'best', got 'slow'"):
        parse_config({"preset": "slow"})


# -- recipes ---------------------------------------------------------------------------
def test_validation_split_is_large_enough_to_judge():
    assert val_fraction(100) == pytest.approx(0.2)  # a fifth at most
    assert round(val_fraction(1300) * 1300) == 200  # about 200 rows where the data allows
    assert val_fraction(40_000) == pytest.approx(0.1)


def test_training_length_is_counted_in_steps_sized_to_the_data():
    small = size_trainer(TrainerConfig(), 1300, "medium")
    big = size_trainer(TrainerConfig(), 40_000, "medium")
    steps = 18  # ceil(1,100 training rows / 64)
    assert (small.epochs, small.patience, small.scheduler) == (167, 17, "plateau")  # ~3,000 steps
    assert small.epochs * steps >= 3000 and big.epochs == 10 and big.patience == 3
    assert size_trainer(TrainerConfig(), 1300, "best").epochs > small.epochs
    fixed = size_trainer(TrainerConfig(epochs=5, patience=2, val_fraction=0.3), 1300, "medium")
    assert (fixed.epochs, fixed.patience, fixed.val_fraction, fixed.scheduler) == (5, 2, 0.3, "onecycle")


# -- time limit ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "seconds"), [("10m", 600), ("90s", 90), ("1h30m", 5400), (42, 42), ("7", 7)]
)
def test_time_limits_parse(text, seconds):
    assert parse_duration(text) == seconds
    assert parse_duration(format_seconds(seconds)) == seconds


@pytest.mark.parametrize("bad", ["0", "-1", "abc", "", "10x", 0, -5, float("inf")])
def test_bad_time_limits_are_refused(bad):
    with pytest.raises(ConfigError, match="time_limit: (a time limit must be|expected a duration)"):
        parse_config({"trainer": {"time_limit": bad}})


def slow_steps(monkeypatch, seconds: float) -> None:
    """Every training step takes at least `seconds` more, so a budget binds after a few."""
    step = MultimodalSystem.training_step

    def slow(self, batch, batch_idx):
        time.sleep(seconds)
        return step(self, batch, batch_idx)

    monkeypatch.setattr(MultimodalSystem, "training_step", slow)


def timed_config(limit: float) -> dict:
    config = tiny_config()
    config["trainer"].update(epochs=40, batch_size=8, time_limit=limit)  # 2 steps an epoch: 80 steps
    return config


@pytest.mark.slow
def test_training_stops_within_the_budget_with_its_best_checkpoint(tmp_path: Path, monkeypatch):
    slow_steps(monkeypatch, 0.25)
    make_table(tmp_path, rows=20).to_csv(tmp_path / "t.csv", index=False)
    fit(tmp_path / "t.csv", label="colour", config=timed_config(6), out=tmp_path / "run", verbose=False)
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert 1 <= metrics["epochs"] < 40  # stopped by the limit, not by the epochs
    assert metrics["best_epoch"] is not None and "accuracy" in metrics["validation"]


def test_a_run_that_generates_text_keeps_more_back_for_its_final_decoding():
    from plait.budget import RESERVE_SECONDS, RESERVE_SHARE, TEXT_RESERVE_SHARE, Budget

    now = time.monotonic()  # the budget's clock has not moved: the arithmetic alone
    plain = Budget(now, 100.0).training_seconds()
    text = Budget(now, 100.0, reserve_share=TEXT_RESERVE_SHARE).training_seconds()
    assert plain == pytest.approx(100 * (1 - RESERVE_SHARE) - RESERVE_SECONDS, abs=0.5)
    assert text == pytest.approx(100 * (1 - TEXT_RESERVE_SHARE) - RESERVE_SECONDS, abs=0.5)


def fit_a_minute_with(tmp_path: Path, rows: int, spent: float) -> None:
    """Train under a 60 s limit of which `spent` seconds are already gone."""
    make_table(tmp_path, rows=rows).to_csv(tmp_path / "t.csv", index=False)
    started = time.monotonic() - spent
    fit(
        tmp_path / "t.csv",
        label="colour",
        config=timed_config(60),
        out=tmp_path / "run",
        verbose=False,
        started=started,
    )


def test_a_budget_used_up_before_training_says_so(tmp_path: Path):
    with pytest.raises(ConfigError, match=r"--time-limit 1m was used up before training started"):
        fit_a_minute_with(tmp_path, rows=20, spent=100)
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_a_budget_too_short_for_one_pass_gives_the_minimum(tmp_path: Path, monkeypatch):
    slow_steps(monkeypatch, 2.0)  # 40 rows: 4 steps a pass, 8 s
    with pytest.raises(ConfigError, match=r"is too short to finish one pass over the data .* give at least"):
        fit_a_minute_with(tmp_path, rows=40, spent=52)  # about 4 s to train, after a 4 s reserve
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_bad_presets_and_limits_through_the_cli(tmp_path: Path):
    make_table(tmp_path, rows=12).to_csv(tmp_path / "t.csv", index=False)
    train = ["train", tmp_path / "t.csv", "--label", "colour", "--out", tmp_path / "run"]
    results = plait_many(
        [*train, "--preset", "slow"],
        [*train, "--time-limit", "0"],
        [*train, "--time-limit", "-1m"],
        [*train, "--time-limit", "soon"],
    )
    messages = (
        "'fast', 'medium' or 'best'",
        "positive duration",
        "expected a duration",
        "expected a duration",
    )
    for result, message in zip(results, messages, strict=True):
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 2 and len(lines) == 1 and message in lines[0], result.stderr
    assert not (tmp_path / "run").exists()


def test_components_are_named_in_full_in_the_saved_config(frame, monkeypatch):
    monkeypatch.setattr(plait.presets, "missing_pretrained", lambda: ())
    cfg = resolve_config(frame, PlaitConfig(encoders={"image": ComponentSpec(name="cnn")}), ["colour"])
    assert encoders(cfg)["image"] == "cnn" and cfg.encoders["image"].name == "cnn"


def test_image_preprocessing_a_backbone_cannot_take_keeps_the_from_scratch_encoder(frame, monkeypatch):
    monkeypatch.setattr(plait.presets, "missing_pretrained", lambda: ())
    config = parse_config(
        {"inputs": [{"name": "image", "preprocessing": {"horizontal_flip": True}}, {"name": "caption"}]}
    )
    cfg = resolve_config(frame, config, ["colour"])
    assert encoders(cfg) == {"image": "cnn", "caption": "minilm"}  # no flipping a cached feature
    grey = parse_config({"inputs": [{"name": "image", "preprocessing": {"grayscale": True}}]})
    assert encoders(resolve_config(frame, grey, ["colour"])) == {"image": "cnn"}  # ImageNet wants 3 channels
