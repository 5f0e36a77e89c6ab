"""build_model and MultimodalModel: the assembled model follows the config."""

from pathlib import Path

import pytest
import torch

from plait.build import build_model, validate_components
from plait.config import parse_config
from plait.data.schema import resolve_config
from plait.encoders.text import RNNEncoder
from plait.errors import ConfigError
from plait.train import fit_processors
from tests.conftest import make_table, tiny_config


def built(tmp_path: Path, config: dict):
    frame = make_table(tmp_path, rows=20)
    cfg = resolve_config(frame, parse_config(config), ["colour", "price"])
    procs, targets = fit_processors(cfg, frame, tmp_path)
    return cfg, procs, targets, build_model(cfg, procs, targets), frame


def test_model_follows_config(tmp_path: Path):
    config = tiny_config()
    config["inputs"][1]["encoder"] = {"name": "lstm", "hidden_dim": 5, "bidirectional": False}
    cfg, procs, targets, model, frame = built(tmp_path, config)
    assert sorted(model.encoders) == ["caption", "image", "shop", "size"]
    assert isinstance(model.encoders["caption"], RNNEncoder) and model.encoders["caption"].out_dim == 5
    assert model.encoders["caption"].embed.num_embeddings == len(procs["caption"].vocab_)
    assert model.heads["colour"].net[-1].out_features == 3
    assert model.fusion.out_dim == 8 + 5 + 16 + 16 + 4


def test_forward_and_predict_shapes(tmp_path: Path):
    from plait.data.dataset import TableDataset

    cfg, procs, targets, model, frame = built(tmp_path, tiny_config())
    batch = TableDataset.from_frame(frame, procs, targets, base_dir=tmp_path).__getitems__([0, 1, 2, 3])
    raw = model(batch.inputs, batch.present)
    assert raw["colour"].shape == (4, 3) and raw["price"].shape == (4,)
    pred = model.predict(batch.inputs, batch.present)
    assert torch.allclose(pred["colour"].sum(1), torch.ones(4))


def test_missing_rows_do_not_depend_on_their_placeholder(tmp_path: Path):
    from plait.data.dataset import TableDataset

    cfg, procs, targets, model, frame = built(tmp_path, tiny_config())
    model.eval()
    batch = TableDataset.from_frame(frame, procs, targets, base_dir=tmp_path).__getitems__([5, 6])
    assert not batch.present["image"][0]
    before = model.predict(batch.inputs, batch.present)["colour"]
    batch.inputs["image"][0] = torch.randn_like(batch.inputs["image"][0]) * 100
    after = model.predict(batch.inputs, batch.present)["colour"]
    assert torch.allclose(before, after)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"fusion": "concatenate"}, "unknown fusion 'concatenate'. Did you mean 'concat'"),
        ({"fusion": {"name": "concat", "dim": 3}}, "fusion 'concat' got unknown parameter"),
        ({"outputs": [{"name": "colour", "head": "regression"}]}, "head 'regression' does not take category"),
    ],
)
def test_component_errors(tmp_path: Path, change: dict, match: str):
    frame = make_table(tmp_path, rows=10)
    cfg = resolve_config(frame, parse_config({**tiny_config(), **change}), ["colour"])
    with pytest.raises(ConfigError, match=match):
        validate_components(cfg)
