"""Run an exported model (`plait export`) on a table: the saved preprocessing, the
model file, the same prediction columns as `plait predict`.

Light on purpose: it imports the processors, the table reader and the model's
runtime (onnxruntime for ONNX, torch for TorchScript and torch.export), and none of
the training code (no Lightning, no torchmetrics, no model-building code).

    from plait.runtime import Runtime
    Runtime.load("model.onnx").predict("new.csv")

Trust: an ONNX file is data. A .pt2 (torch.export) or TorchScript file is a program,
and torch.export.load unpickles parts of it; load those only from a trusted source.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from plait.data.dataset import TableDataset
from plait.data.processors import INPUT_PROCESSORS, TARGET_PROCESSORS
from plait.data.schema import check_columns
from plait.data.table import read_table
from plait.errors import RunFolderError
from plait.outputs import prediction_frame

META_KEY = "plait.json"  # as written by plait.export
BATCH = 512


class Runtime:
    def __init__(self, meta: dict[str, Any], run: Any, path: Path) -> None:
        self.meta = meta
        self.keys: list[str] = meta["inputs"]
        self.target_names: list[str] = meta["targets"]
        self.processors = {
            k: INPUT_PROCESSORS[s["kind"]].from_state(s) for k, s in meta["processors"].items()
        }
        self.targets = {
            k: TARGET_PROCESSORS[s["kind"]].from_state(s) for k, s in meta["target_processors"].items()
        }
        self._run = run  # (list of input tensors) → list of output arrays
        self.path = path

    @classmethod
    def load(cls, path: str | Path) -> Runtime:
        path = Path(path)
        if not path.is_file():
            raise RunFolderError(f"exported model not found: {path}")
        try:
            if path.suffix.lower() == ".onnx":
                meta, run = _load_onnx(path)
            elif path.suffix.lower() == ".pt2":
                extra = {META_KEY: ""}
                program = torch.export.load(str(path), extra_files=extra)
                module = program.module()
                meta, run = extra[META_KEY], lambda args: [o.numpy() for o in module(*args)]
            else:
                extra = {META_KEY: ""}
                with warnings.catch_warnings():  # TorchScript is deprecated upstream, still loads
                    warnings.filterwarnings("ignore", ".*torch.jit.*deprecated", FutureWarning)
                    module = torch.jit.load(str(path), map_location="cpu", _extra_files=extra)
                meta, run = extra[META_KEY], lambda args: [o.numpy() for o in module(*args)]
            info = json.loads(meta)
        except (RuntimeError, ValueError, OSError, KeyError) as err:
            raise RunFolderError(
                f"{path} is not a model written by plait export: {str(err).splitlines()[0][:200]}"
            ) from None
        return cls(info, run, path)

    @torch.inference_mode()
    def predict(self, data: str | Path | pd.DataFrame, base_dir: str | Path | None = None) -> pd.DataFrame:
        """One row per input row: id columns, predicted labels/values, probabilities."""
        table = read_table(data, base_dir)
        needed = [c for key, p in self.processors.items() for c in p.source_columns(key)]
        check_columns(table.frame, dict.fromkeys(needed), "input", needed=True)
        on_bad = "missing" if self.meta["on_bad_row"] != "error" else "error"
        dataset = TableDataset.from_frame(
            table.frame, self.processors, base_dir=table.base_dir, on_bad_row=on_bad
        )
        outputs: list[list[np.ndarray]] = []
        for start in range(0, len(dataset), BATCH):
            batch = dataset.__getitems__(list(range(start, min(start + BATCH, len(dataset)))))
            args = [t for k in self.keys for t in (batch.inputs[k], batch.present[k])]
            outputs.append(self._run(args))
        preds: dict[str, Tensor] = {
            name: torch.from_numpy(np.concatenate([o[i] for o in outputs]))
            for i, name in enumerate(self.target_names)
        }
        return prediction_frame(table.frame, self.meta["id_columns"], self.targets, preds)


def _load_onnx(path: Path) -> tuple[str, Any]:
    import onnxruntime  # the ONNX runtime is only needed for .onnx files

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    meta = session.get_modelmeta().custom_metadata_map[META_KEY]
    keys = json.loads(meta)["inputs"]
    names = [name for k in keys for name in (k, f"{k}:present")]  # as plait.export names them
    used = {i.name for i in session.get_inputs()}  # an input the graph ignores is pruned

    def run(args: list[Tensor]) -> list[np.ndarray]:
        return session.run(None, {n: a.numpy() for n, a in zip(names, args, strict=True) if n in used})

    return meta, run


def main(argv: list[str] | None = None) -> int:
    """`python -m plait.runtime MODEL DATA --output FILE`: predictions without the
    training stack. A user mistake prints one line and exits with 2."""
    import argparse
    import sys

    from plait.errors import PlaitError

    parser = argparse.ArgumentParser(prog="python -m plait.runtime", description=main.__doc__.split("\n")[0])
    parser.add_argument("model", type=Path, help="file written by plait export (.onnx, .pt, .pt2)")
    parser.add_argument("data", type=Path, help="CSV, Parquet or JSONL table")
    parser.add_argument("--output", "-o", type=Path, required=True, help="CSV, Parquet or JSONL to write")
    args = parser.parse_args(argv)
    try:
        frame = Runtime.load(args.model).predict(args.data)
        suffix = args.output.suffix.lower()
        if suffix == ".csv":
            frame.to_csv(args.output, index=False)
        elif suffix in (".parquet", ".pq"):
            frame.to_parquet(args.output, index=False)
        elif suffix == ".jsonl":
            frame.to_json(args.output, orient="records", lines=True)
        else:
            raise PlaitError(f"--output must end in .csv, .parquet or .jsonl, got {args.output.name!r}")
    except PlaitError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {len(frame)} predictions to {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
