"""Speed options through fit(): the decode cache, channels-last and torch.compile."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import torch

import plait
from plait.data import decode_cache
from plait.data.processors import ImageProcessor, TextProcessor
from plait.errors import ConfigError
from tests.conftest import tiny_config


def one_epoch(**overrides: object) -> dict:
    config = tiny_config(**overrides)
    config["trainer"]["epochs"] = 1
    return config


def test_a_second_run_reads_decoded_columns_from_the_cache(table_csv: Path, tmp_path: Path, monkeypatch):
    first = plait.fit(table_csv, label="colour", config=one_epoch(), out=tmp_path / "a", verbose=False)
    assert len(list(decode_cache.cache_dir().glob("*.safetensors"))) == 4  # 2 columns × train, val
    metrics = first.evaluate(table_csv)  # the whole table: 2 more
    stored = sorted(decode_cache.cache_dir().glob("*.safetensors"))
    assert len(stored) == 6
    for proc in (ImageProcessor, TextProcessor):

        def fail(*args: object, **kwargs: object) -> None:
            raise AssertionError("decoded again")

        monkeypatch.setattr(proc, "transform", fail)
    plait.fit(table_csv, label="colour", config=one_epoch(), out=tmp_path / "b", verbose=False)
    assert plait.load(tmp_path / "b").evaluate(table_csv) == metrics  # a hit too, same seed
    assert sorted(decode_cache.cache_dir().glob("*.safetensors")) == stored


def test_cache_false_writes_nothing(table_csv: Path, tmp_path: Path):
    plait.fit(table_csv, label="colour", config=one_epoch(cache=False), out=tmp_path / "a", verbose=False)
    plait.load(tmp_path / "a").evaluate(table_csv)
    assert not decode_cache.cache_dir().exists()


def test_channels_last_trains_and_saves_a_loadable_run(table_csv: Path, tmp_path: Path):
    config = one_epoch()
    config["trainer"]["channels_last"] = True
    predictor = plait.fit(table_csv, label="colour", config=config, out=tmp_path / "run", verbose=False)
    reloaded = plait.load(tmp_path / "run")
    assert reloaded.config.trainer.channels_last
    pd.testing.assert_frame_equal(predictor.predict(table_csv), reloaded.predict(table_csv))


def test_compile_trains_and_saves_a_loadable_run(table_csv: Path, tmp_path: Path):
    torch._dynamo.reset()
    # Numbers and categories only, 2 equal training batches: compiling the CNN and GRU
    # (and again for a short last batch) takes minutes on 2 cores.
    config = one_epoch(inputs=[{"name": "size", "type": "numeric"}, {"name": "shop", "type": "category"}])
    config["trainer"].update(compile=True, accelerator="cpu", batch_size=27)
    predictor = plait.fit(table_csv, label="colour", config=config, out=tmp_path / "run", verbose=False)
    names = set(predictor.model.state_dict())
    assert not any("_orig_mod" in n for n in names)  # the plain module is saved
    reloaded = plait.load(tmp_path / "run")
    assert set(reloaded.model.state_dict()) == names
    pd.testing.assert_frame_equal(predictor.predict(table_csv), reloaded.predict(table_csv))


def test_compile_without_a_compiler_is_one_clear_error(table_csv: Path, tmp_path: Path, monkeypatch):
    from torch._inductor import config as inductor

    torch._dynamo.reset()
    monkeypatch.setattr(inductor.cpp, "cxx", ("/nonexistent/c++",))
    monkeypatch.setattr(inductor, "fx_graph_cache", False)
    config = one_epoch()
    config["trainer"].update(compile=True, accelerator="cpu")
    with pytest.raises(ConfigError, match=r"trainer.compile: torch.compile cannot run here \(.*compiler"):
        plait.fit(table_csv, label="colour", config=config, out=tmp_path / "run", verbose=False)
    assert not (tmp_path / "run").exists()
    torch._dynamo.reset()
