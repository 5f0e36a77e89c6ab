from pathlib import Path

import pytest

from plait.config import PlaitConfig, ResolvedConfig, apply_overrides, parse_config
from plait.data.datamodule import split_frame
from plait.data.schema import parse_type_overrides, resolve_config, resolved
from plait.errors import ConfigError, DataError
from tests.conftest import make_table


def test_infers_inputs_outputs_ids(tmp_path: Path):
    frame = make_table(tmp_path, rows=30)
    cfg = resolve_config(frame, PlaitConfig(), ["colour"])
    assert [(i.name, i.type) for i in cfg.inputs] == [
        ("image", "image"),
        ("caption", "text"),
        ("size", "numeric"),
        ("shop", "category"),
        ("is_red", "category"),
        ("price", "numeric"),
    ]
    assert [(o.name, o.type) for o in cfg.outputs] == [("colour", "category")]
    assert cfg.id_columns == ["id"]


def test_overrides_beat_config_beat_inference(tmp_path: Path):
    frame = make_table(tmp_path, rows=30)
    config = parse_config({"inputs": [{"name": "caption", "type": "category"}, {"name": "size"}]})
    cfg = resolve_config(frame, config, ["price"], types={"size": "category", "price": "numeric"})
    assert [(i.name, i.type) for i in cfg.inputs] == [("caption", "category"), ("size", "category")]
    assert "image" not in [i.name for i in cfg.inputs]  # an explicit input list is exact


def test_unknown_columns_list_the_real_ones(tmp_path: Path):
    frame = make_table(tmp_path, rows=10)
    with pytest.raises(
        DataError, match=r"unknown label column 'color'. Did you mean 'colour'\? Columns: id, image"
    ):
        resolve_config(frame, PlaitConfig(), ["color"])
    with pytest.raises(DataError, match="unknown --type column 'nope'"):
        resolve_config(frame, PlaitConfig(), ["colour"], types={"nope": "text"})
    with pytest.raises(ConfigError, match="no label column"):
        resolve_config(frame, PlaitConfig(), [])


def test_label_type_must_be_a_target_type(tmp_path: Path):
    frame = make_table(tmp_path, rows=10)
    with pytest.raises(ConfigError, match="label 'colour' cannot have type 'image'"):
        resolve_config(frame, PlaitConfig(), ["colour"], types={"colour": "image"})


def test_type_override_parsing():
    assert parse_type_overrides(["a=text", "b=c=numeric"]) == {"a": "text", "b=c": "numeric"}
    with pytest.raises(ConfigError, match="COLUMN=TYPE"):
        parse_type_overrides(["a"])
    assert parse_type_overrides(["clip=video"]) == {"clip": "video"}
    with pytest.raises(ConfigError, match="unknown type 'hologram'"):
        parse_type_overrides(["a=hologram"])


def test_split_column_and_random_validation(tmp_path: Path):
    frame = make_table(tmp_path, rows=40)
    frame["split"] = ["train"] * 30 + ["test"] * 10
    train, val, test = split_frame(frame, "split", 0.2, seed=0)
    assert (len(train), len(val), len(test)) == (24, 6, 10)
    assert set(val.index) <= set(range(30))
    again = split_frame(frame, "split", 0.2, seed=0)
    assert list(again[1].index) == list(val.index)  # seeded
    with pytest.raises(DataError, match="at least 2 training rows"):
        split_frame(frame.iloc[:1], None, 0.1, 0)


def test_resolution_makes_every_choice_once(tmp_path: Path):
    """The resolved config names each input's type, group and encoder and each output's
    type and head: nothing downstream picks a default again."""
    frame = make_table(tmp_path, rows=10)
    cfg = resolve_config(frame, PlaitConfig(preset="fast"), ["colour"])
    assert isinstance(cfg, ResolvedConfig)
    chosen = {i.name: (i.type, i.group, i.encoder.name) for i in cfg.inputs}
    assert chosen["image"] == ("image", "image", "cnn")
    assert chosen["caption"] == ("text", "text", "gru")
    assert chosen["size"] == ("numeric", "tabular", "tabular_mlp")
    assert chosen["shop"] == ("category", "tabular", "tabular_mlp")
    assert [(o.name, o.type, o.head.name) for o in cfg.outputs] == [("colour", "category", "classification")]
    assert isinstance(apply_overrides(cfg, epochs=3), ResolvedConfig)  # overrides keep it resolved


def test_a_saved_config_without_encoders_gets_what_it_built_then():
    """Run folders written before config.yaml named every encoder and head: the defaults
    of that time (DEFAULT_ENCODERS, not the preset's), so the weights still fit."""
    old = parse_config(
        {
            "inputs": [
                {"name": "image", "type": "image"},
                {"name": "caption", "type": "text"},
                {"name": "size", "type": "numeric"},
            ],
            "outputs": [{"name": "colour", "type": "category"}],
            "preset": "medium",
        }
    )
    cfg = resolved(old)
    assert {i.name: (i.group, i.encoder.name) for i in cfg.inputs} == {
        "image": ("image", "cnn"),
        "caption": ("text", "gru"),
        "size": ("tabular", "tabular_mlp"),
    }
    assert cfg.outputs[0].head.name == "classification"
    untyped = parse_config(
        {"inputs": [{"name": "image"}], "outputs": [{"name": "colour", "type": "category"}]}
    )
    with pytest.raises(ConfigError, match="input 'image' has no type"):
        resolved(untyped)


def test_a_video_column_with_audio_adds_its_sound_track_input(tmp_path: Path):
    frame = make_table(tmp_path, rows=20).assign(clip=[f"clips/{i}.mp4" for i in range(20)])
    assert {i.name: i.type for i in resolve_config(frame, PlaitConfig(), ["colour"]).inputs}[
        "clip"
    ] == "video"
    config = parse_config(
        {"inputs": [{"name": "clip", "audio": {"n_mels": 16}}, {"name": "caption"}], "preset": "fast"}
    )
    cfg = resolve_config(frame, config, ["colour"])
    track = next(i for i in cfg.inputs if i.name == "clip:audio")
    assert (track.type, track.sound_of, track.group, track.encoder.name) == (
        "audio",
        "clip",
        "clip:audio",
        "audio_cnn1d",
    )
    assert track.preprocessing == {"n_mels": 16}
    again = resolve_config(frame, cfg, ["colour"])  # a saved config resolved again: one sound track
    assert [i.name for i in again.inputs] == [i.name for i in cfg.inputs]
    with pytest.raises(ConfigError, match="input 'caption': audio: is for video columns, not text columns"):
        resolve_config(frame, parse_config({"inputs": [{"name": "caption", "audio": True}]}), ["colour"])
