"""The examples users copy from (examples/) keep working: every config builds a model
that runs on a tiny table of its columns, its documented command names it and one of its
outputs (and, where the data set is at hand, its columns exist there), the reference
config is what `plait demo` trains, and examples/api.py runs against a demo-like run."""

from __future__ import annotations

import re
import runpy
import shlex
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch
from PIL import Image
from safetensors.torch import save_model

import plait
from plait.build import build_model
from plait.config import PlaitConfig, load_config, parse_config
from plait.data.builtin import DEMO_CONFIG
from plait.data.datamodule import make_loader
from plait.data.prepare import table_datasets
from plait.data.schema import resolve_config, resolved
from plait.data.table import read_table
from plait.runfolder import write_run
from tests.conftest import SHARED_DATA

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))
ROWS = 8


def tiny_table(config: PlaitConfig, folder: Path) -> pd.DataFrame:
    """ROWS rows holding every column `config` names, of its declared type (media files
    written into `folder`, paths relative to it); row 1 misses its first media input."""
    folder.mkdir(parents=True, exist_ok=True)
    columns: dict[str, list] = {}
    for col in config.inputs:
        if col.type == "image":
            for i in range(3):
                Image.new("RGB", (12, 10), ((80 * i) % 256, 40, 200)).save(folder / f"img{i}.png")
            columns[col.name] = [f"img{i % 3}.png" for i in range(ROWS)]
        elif col.type == "audio":
            for i in range(2):
                tone = np.sin(np.arange(1600) * (i + 1) / 10).astype(np.float32)
                sf.write(folder / f"clip{i}.wav", tone, 8000)
            columns[col.name] = [f"clip{i % 2}.wav" for i in range(ROWS)]
        elif col.type == "text":
            columns[col.name] = [f"a {['red', 'blue'][i % 2]} shape number {i}" for i in range(ROWS)]
        elif col.type == "category":
            columns[col.name] = [["north", "south", "east"][i % 3] for i in range(ROWS)]
        elif col.type == "numeric":
            columns[col.name] = [float(i % 4) + 0.5 for i in range(ROWS)]
        else:
            pytest.fail(f"input {col.name!r}: give tiny_table cells for type {col.type!r}")
    labels = {
        "category": [["circle", "square", "triangle"][i % 3] for i in range(ROWS)],
        "binary": [str(i % 2) for i in range(ROWS)],
        "numeric": [float(i) for i in range(ROWS)],
        "multilabel": [["a|b", "b", "a|c"][i % 3] for i in range(ROWS)],
        "text": [f"a {['red', 'blue'][i % 2]} square" for i in range(ROWS)],
    }
    for out in config.outputs:
        if out.type not in labels:
            pytest.fail(f"output {out.name!r}: give tiny_table labels for type {out.type!r}")
        columns[out.name] = labels[out.type]
    frame = pd.DataFrame(columns)
    media = [c.name for c in config.inputs if c.type in ("image", "audio")]
    if media:
        frame.loc[1, media[0]] = ""  # a missing modality
    return frame


def built(config: PlaitConfig, folder: Path):
    """Resolved config, processors, targets and model, as plait.train builds them."""
    frame = tiny_table(config, folder)
    cfg = resolve_config(frame, config, [o.name for o in config.outputs])
    processors, targets, datasets = table_datasets(cfg, frame, folder)
    torch.manual_seed(0)
    return cfg, processors, targets, datasets, build_model(cfg, processors, targets)


def documented_command(path: Path) -> list[str]:
    """The `plait ...` command in the example's leading comments (continuations joined)."""
    comments = []
    for line in path.read_text().splitlines():
        if not line.startswith("#"):
            break
        comments.append(line.lstrip("#").strip())
    text = " ".join(comments).replace("\\ ", " ")
    found = re.search(r"\bplait (train|benchmark) .*", text)
    assert found, f"{path.name}: no `plait train ...` command in its leading comments"
    return shlex.split(found.group(0))


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_config_is_valid(path: Path):
    config = load_config(path)
    assert config.inputs and config.outputs
    resolved(config)  # every column typed; every encoder, head and parameter exists


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_builds_a_model_that_runs_on_a_tiny_table_of_its_columns(tmp_path: Path, path: Path):
    config = load_config(path)
    cfg, processors, _, datasets, model = built(config, tmp_path)
    assert [c.name for c in cfg.inputs] == [c.name for c in config.inputs]  # nothing dropped
    read = {name for key, proc in processors.items() for name in proc.source_columns(key)}
    assert read == {c.name for c in config.inputs}  # every column reaches the model
    batch = next(iter(make_loader(datasets["train"], 4, False, num_workers=0)))
    with torch.no_grad():
        raw = model.eval()(batch.inputs, batch.present)
    assert set(raw) == {o.name for o in config.outputs}
    assert all(len(out) == len(batch) and torch.isfinite(out.float()).all() for out in raw.values())


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_documented_command_names_the_example_and_one_of_its_outputs(path: Path):
    command = documented_command(path)
    options = dict(zip(command[3::2], command[4::2], strict=False))  # after `plait train DATA`
    assert options.get("--config") == f"examples/{path.name}"
    assert options.get("--label") in {o.name for o in load_config(path).outputs}


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_documented_data_set_has_the_configured_columns(path: Path):
    data = documented_command(path)[2]
    if not data.startswith("../shared/data/"):
        pytest.skip(f"{path.name} trains on the user's own table ({data})")
    table = SHARED_DATA / data.removeprefix("../shared/data/")
    if not table.is_file():
        pytest.skip(f"{data} is not at hand")
    config = load_config(path)
    columns = set(read_table(table).frame.columns)
    named = {c.name for c in config.inputs} | {o.name for o in config.outputs}
    assert named <= columns, f"{path.name} names columns {sorted(named - columns)} that {data} lacks"


def test_reference_example_is_what_plait_demo_trains(tmp_path: Path):
    reference, demo = load_config(ROOT / "examples" / "reference.yaml"), parse_config(DEMO_CONFIG)
    models = [built(c, tmp_path / name)[-1] for name, c in (("reference", reference), ("demo", demo))]
    shapes = [{k: tuple(v.shape) for k, v in m.state_dict().items()} for m in models]
    assert shapes[0] == shapes[1]  # the same encoders, fusion and head, of the same sizes
    for setting in ("epochs", "batch_size", "learning_rate"):
        assert getattr(reference.trainer, setting) == getattr(demo.trainer, setting), setting


def test_api_example_runs_on_a_demo_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys):
    """examples/api.py as written (`runs/demo` in the working folder, easy-VQA's table),
    against an untrained run of the demo config on a tiny table of easy-VQA's columns."""
    cfg, processors, targets, _, model = built(parse_config(DEMO_CONFIG), tmp_path / "data")
    run = tmp_path / "runs" / "demo"
    run.mkdir(parents=True)
    save_model(model.eval(), str(run / "model.safetensors"))  # as plait.train writes a run
    write_run(run, cfg, processors, targets, metrics={})
    frame = tiny_table(cfg, tmp_path / "data")
    # Absolute image paths, as easy_vqa() gives them.
    frame["image"] = [str(tmp_path / "data" / p) if p else "" for p in frame["image"]]
    table = pd.concat([frame.assign(split="train"), frame.assign(split="test")], ignore_index=True)
    monkeypatch.setattr("plait.data.builtin.easy_vqa", lambda: table)
    monkeypatch.chdir(tmp_path)
    runpy.run_path(str(ROOT / "examples" / "api.py"), run_name="__main__")
    printed = capsys.readouterr().out
    assert "'accuracy':" in printed and "'macro_f1':" in printed
    assert "answer_prob_circle" in printed
    assert plait.load(run).targets["answer"].classes_ == ["circle", "square", "triangle"]
