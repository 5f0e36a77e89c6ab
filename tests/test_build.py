"""build_model and MultimodalModel: the assembled model follows the config."""

from pathlib import Path

import pytest
import torch

from plait.build import build_model
from plait.config import parse_config
from plait.data.prepare import fit_processors
from plait.data.schema import resolve_config
from plait.encoders.text import RNNEncoder
from plait.errors import ConfigError
from plait.fusion import FUSIONS
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
    assert sorted(model.encoders) == ["image", "tabular", "text"]  # one per group
    assert model.inputs == {"image": "image", "caption": "text", "tabular": "tabular"}
    assert isinstance(model.encoders["text"], RNNEncoder) and model.encoders["text"].out_dim == 5
    assert model.encoders["text"].embed.num_embeddings == len(procs["caption"].vocab_)
    assert model.heads["colour"].net[-1].out_features == 3
    assert model.fusion.out_dim == 8 + 5 + 32 + 3  # image, text, tabular (size + shop), flags


def test_forward_and_predict_shapes(tmp_path: Path):
    from plait.data.dataset import TableDataset

    cfg, procs, targets, model, frame = built(tmp_path, tiny_config())
    batch = TableDataset.from_frame(frame, procs, targets, base_dir=tmp_path).__getitems__([0, 1, 2, 3])
    raw = model(batch.inputs, batch.present)
    assert raw["colour"].shape == (4, 3) and raw["price"].shape == (4,)
    pred = model.predict(batch.inputs, batch.present)
    assert torch.allclose(pred["colour"].sum(1), torch.ones(4))


@pytest.mark.parametrize("fusion", FUSIONS.names())
def test_missing_rows_do_not_depend_on_their_placeholder(tmp_path: Path, fusion: str):
    """Generated from the registry: the whole model (heads included), per fusion."""
    from plait.data.dataset import TableDataset

    cfg, procs, targets, model, frame = built(tmp_path, tiny_config(fusion={"name": fusion}))
    model.eval()
    batch = TableDataset.from_frame(frame, procs, targets, base_dir=tmp_path).__getitems__([5, 6])
    assert not batch.present["image"][0]
    before = model.predict(batch.inputs, batch.present)["colour"]
    batch.inputs["image"][0] = torch.randn_like(batch.inputs["image"][0]) * 100
    after = model.predict(batch.inputs, batch.present)["colour"]
    assert torch.allclose(before, after)
    assert batch.present["image"][1]
    batch.inputs["image"][1] = torch.randn_like(batch.inputs["image"][1]) * 100
    changed = model.predict(batch.inputs, batch.present)["colour"]
    assert not torch.allclose(before[1], changed[1])  # a present image does count


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"fusion": "concatenate"}, "unknown fusion 'concatenate'. Did you mean 'concat'"),
        ({"fusion": {"name": "concat", "dim": 3}}, "fusion 'concat' got unknown parameter"),
        ({"outputs": [{"name": "colour", "head": "regression"}]}, "head 'regression' does not take category"),
    ],
)
def test_component_errors_stop_resolution(tmp_path: Path, change: dict, match: str):
    frame = make_table(tmp_path, rows=10)
    with pytest.raises(ConfigError, match=match):  # checked once, where the config is resolved
        resolve_config(frame, parse_config({**tiny_config(), **change}), ["colour"])


def two_text_columns(tmp_path: Path, **config_extra):
    frame = make_table(tmp_path, rows=20)
    frame["note"] = [f"note about {c} item" for c in frame["colour"]]
    frame["note"] = frame["note"].str.replace("red", "crimson")  # a word only this column has
    config = {
        "inputs": [
            {"name": "caption", "type": "text", "encoder": {"name": "gru", "hidden_dim": 4}},
            {"name": "note", "type": "text"},
            {"name": "size", "type": "numeric"},
            {"name": "shop", "type": "category"},
        ],
        **config_extra,
    }
    cfg = resolve_config(frame, parse_config(config), ["colour"])
    procs, targets = fit_processors(cfg, frame, tmp_path)
    return cfg, procs, build_model(cfg, procs, targets)


def test_columns_of_one_modality_share_weights_by_default(tmp_path: Path):
    cfg, procs, model = two_text_columns(tmp_path)
    assert [c.group for c in cfg.inputs] == ["text", "text", "tabular", "tabular"]
    assert cfg.inputs[1].encoder == cfg.inputs[0].encoder  # the group's encoder, named in full
    assert procs["caption"] is procs["note"]  # one vocabulary for both
    assert "crimson" in procs["note"].vocab_ and "square" in procs["note"].vocab_
    assert list(model.encoders) == ["text", "tabular"]
    assert model.inputs["caption"] == model.inputs["note"] == "text"
    weights = sum(p.numel() for p in model.encoders.parameters())
    _, _, untied = two_text_columns(tmp_path, share_encoders=False)
    assert sum(p.numel() for p in untied.encoders.parameters()) > weights
    assert sorted(untied.encoders) == ["caption", "note", "tabular"]


def test_tied_columns_keep_their_own_presence(tmp_path: Path):
    from plait.data.dataset import TableDataset

    cfg, procs, model = two_text_columns(tmp_path)
    frame = make_table(tmp_path, rows=20)
    frame["note"] = ""
    batch = TableDataset.from_frame(frame, procs, None, base_dir=tmp_path).__getitems__([0, 1])
    assert batch.present["caption"].all() and not batch.present["note"].any()
    assert model.fusion.out_dim == 4 * 2 + 4 * 2 + 32 + 3  # two text outputs (bi-GRU 4), tabular, flags


def test_tabular_per_column_and_ft_transformer(tmp_path: Path):
    _, procs, model = two_text_columns(tmp_path, tabular="per_column")
    assert sorted(model.inputs) == ["caption", "note", "shop", "size"]
    assert type(procs["size"]).__name__ == "NumericProcessor"
    config = {"inputs": [{"name": "size", "encoder": "ft_transformer"}, {"name": "shop"}]}
    frame = make_table(tmp_path, rows=20)
    cfg = resolve_config(frame, parse_config(config), ["colour"])
    procs, targets = fit_processors(cfg, frame, tmp_path)
    model = build_model(cfg, procs, targets)
    assert type(model.encoders["tabular"]).__name__ == "FTTransformer"
    assert procs["tabular"].columns == ["size", "shop"]


def test_group_conflicts_are_reported(tmp_path: Path):
    frame = make_table(tmp_path, rows=10)
    mixed = {"inputs": [{"name": "caption", "group": "g"}, {"name": "image", "group": "g"}]}
    with pytest.raises(ConfigError, match="group 'g' mixes column types image, text"):
        resolve_config(frame, parse_config(mixed), ["colour"])
    two = {
        "inputs": [{"name": "size", "encoder": "tabular_mlp"}, {"name": "shop", "encoder": "ft_transformer"}]
    }
    with pytest.raises(ConfigError, match="group 'tabular' name different encoders"):
        resolve_config(frame, parse_config(two), ["colour"])


def test_group_preprocessing_is_merged_or_refused(tmp_path: Path):
    frame = make_table(tmp_path, rows=20)
    frame["note"] = "a note"
    merged = {
        "preset": "fast",  # the word-level GRU processor, whose max_length is merged
        "inputs": [{"name": "caption", "preprocessing": {"max_length": 3}}, {"name": "note", "type": "text"}],
    }
    cfg = resolve_config(frame, parse_config(merged), ["colour"])
    procs, _ = fit_processors(cfg, frame, tmp_path)
    assert procs["note"].max_length == 3 and procs["note"] is procs["caption"]
    clash = {
        "inputs": [
            {"name": "caption", "preprocessing": {"max_length": 3}},
            {"name": "note", "type": "text", "preprocessing": {"max_length": 5}},
        ]
    }
    cfg = resolve_config(frame, parse_config(clash), ["colour"])
    with pytest.raises(ConfigError, match="group 'text' share an encoder but set max_length to 3 and 5"):
        fit_processors(cfg, frame, tmp_path)


def test_learned_missing_embedding_replaces_absent_inputs(tmp_path: Path):
    from plait.data.dataset import TableDataset

    cfg, procs, targets, model, frame = built(tmp_path, tiny_config(missing_modality="learned"))
    model.eval()
    assert set(model.missing) == {"image", "caption", "tabular"}
    batch = TableDataset.from_frame(frame, procs, targets, base_dir=tmp_path).__getitems__([5, 6])
    assert not batch.present["image"][0]
    before = model.predict(batch.inputs, batch.present)["colour"]
    batch.inputs["image"][0] = float("nan")  # the placeholder still cannot matter
    assert torch.allclose(before, model.predict(batch.inputs, batch.present)["colour"])
    with torch.no_grad():
        model.missing["image"].add_(1.0)  # ...but the learned embedding does
    assert not torch.allclose(before[0], model.predict(batch.inputs, batch.present)["colour"][0])


def test_late_fusion_refuses_a_text_decoder(tmp_path: Path):
    frame = make_table(tmp_path, rows=12, missing=False)
    frame["words"] = [f"a {c} one" for c in frame["colour"]]
    config = parse_config({**tiny_config(), "fusion": "late", "outputs": [{"name": "words", "type": "text"}]})
    with pytest.raises(ConfigError, match="late fusion cannot combine decoder heads"):
        resolve_config(frame, config, ["words"])
