"""Untrusted run folders and checkpoints: nothing in them is executed when loaded."""

import os
import re
import shutil
from pathlib import Path

import pytest
import torch

import plait
from plait.errors import RunFolderError
from plait.safe_load import load_checkpoint
from tests.conftest import tiny_run

SRC = Path(__file__).resolve().parents[1] / "src" / "plait"


class Planted:
    """Unpickling this runs `os.system`, which would create the marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    return tiny_run(tmp_path_factory.mktemp("safe"))[0]


def test_malicious_pickle_as_model_weights_is_refused(run: Path, tmp_path: Path):
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    marker = tmp_path / "executed"
    torch.save({"state_dict": Planted(marker)}, copy / "model.safetensors")
    with pytest.raises(RunFolderError, match="model.safetensors is damaged"):
        plait.load(copy)
    assert not marker.exists()


@pytest.mark.parametrize("writer", ["pickle", "torch.save"])
def test_malicious_checkpoint_is_refused(tmp_path: Path, writer: str):
    marker = tmp_path / "executed"
    path = tmp_path / "best.ckpt"
    if writer == "pickle":
        import pickle

        path.write_bytes(pickle.dumps({"state_dict": Planted(marker)}))
    else:
        torch.save({"state_dict": Planted(marker)}, path)
    with pytest.raises(RunFolderError) as info:
        load_checkpoint(path)
    message = str(info.value)
    assert "best.ckpt holds objects other than tensors and was refused" in message
    assert "nothing in it was executed" in message and "\n" not in message
    assert not marker.exists()


def test_checkpoint_of_tensors_loads_and_damaged_one_is_named(tmp_path: Path):
    path = tmp_path / "good.ckpt"
    torch.save({"state_dict": {"w": torch.ones(2)}, "epoch": 3}, path)
    assert load_checkpoint(path)["state_dict"]["w"].tolist() == [1.0, 1.0]
    (tmp_path / "bad.ckpt").write_bytes(path.read_bytes()[:50])
    with pytest.raises(RunFolderError, match="bad.ckpt is damaged or not a torch checkpoint"):
        load_checkpoint(tmp_path / "bad.ckpt")
    with pytest.raises(RunFolderError, match="checkpoint not found"):
        load_checkpoint(tmp_path / "none.ckpt")


# What may never appear in Plait's source: each loads a pickle (or runs code) from a file.
FORBIDDEN = {
    "pickle.load": re.compile(r"\bpickle\.loads?\(|\bimport pickle\b|cloudpickle|\bdill\b"),
    "torch.load without weights_only=True": re.compile(r"torch\.load\((?![^)]*weights_only=True)"),
    "weights_only=False": re.compile(r"weights_only\s*=\s*False"),
    "np.load(allow_pickle=True)": re.compile(r"allow_pickle\s*=\s*True"),
    "yaml.load (use yaml.safe_load)": re.compile(r"\byaml\.(load|unsafe_load|full_load)\("),
    "pandas read_pickle": re.compile(r"read_pickle\("),
    "joblib": re.compile(r"\bjoblib\b"),
    "eval/exec of strings": re.compile(r"(?<![\w.])(eval|exec)\("),
    "trust_remote_code=True": re.compile(r"trust_remote_code\s*=\s*True"),
}
# Exported models (.pt2, TorchScript) are programs by design; plait.runtime documents
# that only ONNX files are safe to load from an untrusted source.
ALLOWED = {("runtime.py", "torch.export.load"), ("runtime.py", "torch.jit.load")}


def test_no_unsafe_loading_in_the_source():
    found = []
    for path in sorted(SRC.rglob("*.py")):
        text = path.read_text()
        for what, pattern in FORBIDDEN.items():
            found += [f"{path.relative_to(SRC)}: {what}: {m.group(0)}" for m in pattern.finditer(text)]
        for loader in ("torch.export.load", "torch.jit.load"):
            if loader in text and (path.name, loader) not in ALLOWED:
                found.append(f"{path.relative_to(SRC)}: {loader}")
    assert not found, found
