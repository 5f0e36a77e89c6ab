"""A second network in the ensemble (`neural_attention`): the run's network trained again
with the attention fusion, weighted like any candidate, saved as safetensors, reloaded."""

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import plait
from plait import inference
from plait.cli import app
from plait.ensemble.networks import SECOND_FUSIONS
from tests.ensemble.test_ensemble import config, signal_table


@pytest.fixture(scope="module")
def two_networks(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("networks")
    table = signal_table(folder, rows=60)
    plait.fit(
        table,
        label="colour",
        config=config(["neural", "neural_attention"]),
        out=folder / "run",
        verbose=False,
    )
    return folder / "run", table


def test_the_second_network_is_trained_judged_out_of_fold_and_saved(two_networks):
    run, _ = two_networks
    info = json.loads((run / "ensemble.json").read_text())
    assert info["networks"] == {
        "neural_attention": {
            "fusion": {"name": "attention", "params": {}},
            "file": "members/neural_attention.safetensors",
        }
    }
    assert (run / info["networks"]["neural_attention"]["file"]).is_file()
    board = plait.leaderboard(run).set_index("candidate")
    assert list(board.index) == ["neural", "neural_attention", "ensemble"]
    # Both networks have out-of-fold predictions (five fold networks each), so the
    # selection saw every training and validation row.
    assert (board["folds"] == 5).all() and board.loc["neural_attention", "fit_seconds"] > 0
    assert board.loc["ensemble", "oof_loss"] <= board["oof_loss"].iloc[:2].min() + 1e-12
    assert sum(info["weights"]["colour"].values()) == pytest.approx(1)


def test_each_network_predicts_alone_and_the_reloaded_ensemble_predicts_the_same(two_networks):
    run, table = two_networks
    predictor = plait.load(run)
    ensemble = predictor.run.ensemble
    assert ensemble is not None and set(ensemble.networks) == {"neural_attention"}
    _, dataset = inference.table_dataset(predictor.run, table, with_targets=True)
    mixed, _ = inference.outputs(predictor.run, dataset)
    again, _ = inference.outputs(plait.load(run).run, dataset)
    np.testing.assert_array_equal(mixed["colour"].numpy(), again["colour"].numpy())
    chosen = ensemble.weights
    alone = {}
    for name in ("neural", "neural_attention"):
        ensemble.weights = {"colour": {name: 1.0}}
        alone[name], _ = inference.outputs(predictor.run, dataset)
    ensemble.weights = chosen
    # The second network is a model of its own (attention fusion), not the first again.
    assert not np.allclose(alone["neural"]["colour"].numpy(), alone["neural_attention"]["colour"].numpy())
    expected = sum(w * alone[n]["colour"].numpy() for n, w in chosen["colour"].items())
    np.testing.assert_allclose(mixed["colour"].numpy(), expected, atol=1e-5)


def test_a_missing_input_reaches_the_second_network_through_its_mask(two_networks):
    run, table = two_networks
    predictor = plait.load(run)
    predictor.run.ensemble.weights = {"colour": {"neural_attention": 1.0}}
    _, dataset = inference.table_dataset(predictor.run, table, with_targets=True)
    clean, _ = inference.outputs(predictor.run, dataset)
    dropped, _ = inference.outputs(predictor.run, dataset, drop={"tabular"})
    assert np.isfinite(dropped["colour"].numpy()).all()
    assert not np.allclose(clean["colour"].numpy(), dropped["colour"].numpy())


def test_a_damaged_second_network_is_named_on_load(two_networks, tmp_path: Path):
    import shutil

    run, _ = two_networks
    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    (copy / "members" / "neural_attention.safetensors").write_bytes(b"not a tensor file")
    with pytest.raises(plait.errors.RunFolderError, match="neural_attention.safetensors"):
        plait.load(copy)


def test_a_second_network_of_the_runs_own_fusion_is_one_line(tmp_path: Path):
    assert SECOND_FUSIONS == {"neural_attention": "attention"}
    table = signal_table(tmp_path, rows=30)
    cfg = config(["neural"])
    del cfg["candidates"]
    (tmp_path / "c.yaml").write_text(json.dumps(cfg))
    args = [
        "train",
        str(table),
        "--label",
        "colour",
        "--config",
        str(tmp_path / "c.yaml"),
        "--fusion",
        "attention",
    ]
    result = CliRunner().invoke(
        app, [*args, "--candidates", "neural,neural_attention", "--out", str(tmp_path / "r")]
    )
    assert result.exit_code == 2, result.output
    assert result.stderr.strip() == (
        "error: candidate neural_attention trains the network again with the attention fusion, which the "
        "run's network already uses; drop it from --candidates or choose another --fusion"
    )
    assert not (tmp_path / "r").exists()


def test_preset_best_keeps_its_second_network_where_the_flat_members_cannot_serve(tmp_path: Path):
    """Images and texts learned from scratch give LightGBM and the probe nothing to read;
    best drops them and keeps the second network, which reads the batch itself."""
    from plait.data.prepare import table_datasets
    from plait.data.schema import resolve_config
    from plait.data.table import read_table
    from plait.ensemble import servable

    table = signal_table(tmp_path, rows=30)
    cfg = config(["neural"])
    del cfg["candidates"]
    cfg["inputs"] = [i for i in cfg["inputs"] if i["name"] in ("image", "caption")]
    resolved = resolve_config(
        read_table(table).frame, plait.config.parse_config({**cfg, "preset": "best"}), ["colour"]
    )
    assert resolved.candidates == ["neural", "lightgbm", "linear", "neural_attention"]
    processors, targets, _ = table_datasets(resolved, read_table(table).frame, table.parent)
    assert servable(resolved.candidates, processors, targets, False, False, "concat") == [
        "neural",
        "neural_attention",
    ]
    assert servable(resolved.candidates, processors, targets, False, False, "attention") == ["neural"]
