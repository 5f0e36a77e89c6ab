"""The example configs users copy from stay valid."""

from pathlib import Path

import pytest

from plait.config import load_config

EXAMPLES = sorted((Path(__file__).resolve().parents[1] / "examples").glob("*.yaml"))


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_config_is_valid(path: Path):
    from plait.data.schema import resolved

    config = load_config(path)
    assert config.inputs and config.outputs
    resolved(config)  # every column typed; every encoder, head and parameter exists


def test_there_are_examples():
    assert len(EXAMPLES) >= 2
