from pathlib import Path

import pytest

from plait.config import ComponentSpec, PlaitConfig, load_config, parse_config
from plait.errors import ConfigError


def test_defaults_and_yaml_round_trip(tmp_path: Path):
    cfg = PlaitConfig()
    assert cfg.fusion.name == "concat"
    assert cfg.trainer.epochs == "auto" and cfg.preset == "medium"  # sized to the data (plait.recipe)
    path = tmp_path / "c.yaml"
    path.write_text(cfg.to_yaml())
    assert load_config(path) == cfg


def test_component_shorthands():
    assert ComponentSpec.model_validate("gru") == ComponentSpec(name="gru")
    spec = ComponentSpec.model_validate({"name": "gru", "hidden_dim": 8})
    assert spec.params == {"hidden_dim": 8}
    spec = ComponentSpec.model_validate({"name": "gru", "params": {"hidden_dim": 8}})
    assert spec.params == {"hidden_dim": 8}


def test_yaml_config_with_inputs(tmp_path: Path):
    path = tmp_path / "c.yaml"
    path.write_text(
        "inputs:\n  - {name: q, type: text, encoder: lstm}\n"
        "outputs:\n  - {name: a, type: category}\n"
        "trainer: {epochs: 2}\n"
    )
    cfg = load_config(path)
    assert cfg.inputs[0].encoder.name == "lstm"
    assert cfg.trainer.epochs == 2


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"trainer": {"epochs": 0}}, "trainer.epochs"),
        ({"trainer": {"epoch": 3}}, "trainer.epoch: Extra inputs are not permitted"),
        ({"inputs": [{"name": "x", "type": "hologram"}]}, "inputs.0.type"),
        ([1, 2], "expected a mapping"),
        ({"trainer": {"num_workers": -1}}, "trainer.num_workers"),
        ({"trainer": {"num_workers": "many"}}, "trainer.num_workers"),
        ({"cache": "sometimes"}, "cache"),
    ],
)
def test_invalid_configs_say_where(data, message):
    with pytest.raises(ConfigError, match=message):
        parse_config(data)


def test_missing_and_broken_files(tmp_path: Path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("inputs: [\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)


def test_speed_options_default_and_parse(tmp_path: Path):
    cfg = PlaitConfig()
    assert cfg.cache is True  # the decode cache is opt-out
    assert cfg.trainer.num_workers == "auto"
    assert (cfg.trainer.channels_last, cfg.trainer.compile) == (False, False)
    path = tmp_path / "c.yaml"
    path.write_text("cache: false\ntrainer: {num_workers: 2, channels_last: true, compile: true}\n")
    cfg = load_config(path)
    assert cfg.cache is False and cfg.trainer.num_workers == 2
    assert cfg.trainer.channels_last and cfg.trainer.compile
    assert load_config(path) == parse_config(cfg.model_dump(mode="json"))  # round trip


def test_apply_overrides_routes_each_flag_and_validates_once():
    from plait.config import apply_overrides

    base = PlaitConfig()
    cfg = apply_overrides(base, epochs=5, time_limit="2m", seed=3, fusion="gated", preset="fast", cache=None)
    assert (cfg.trainer.epochs, cfg.trainer.time_limit, cfg.seed) == (5, 120.0, 3)
    assert (cfg.fusion.name, cfg.preset, cfg.cache) == ("gated", "fast", True)  # None leaves a setting alone
    assert apply_overrides(base) is base
    with pytest.raises(
        ConfigError, match=r"^--flags: epochs: Input should be greater than or equal to 1, got 0$"
    ):
        apply_overrides(base, "--flags", epochs=0)
    with pytest.raises(ConfigError, match="preset: Input should be 'fast', 'medium' or 'best'"):
        apply_overrides(base, preset="huge")
    with pytest.raises(TypeError, match="unknown setting"):
        apply_overrides(base, epoch=3)  # a caller's typo is a bug, not a user error
