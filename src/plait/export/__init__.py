"""`plait export RUN --format onnx|torchscript|pt2 --output FILE`: the trained model,
encoders to heads, as one portable file that carries its own preprocessing.

The exported graph takes, per input (sorted by name), the tensor its encoder reads
and the (B,) presence mask, and returns each target's activated output (class
probabilities, values in the label's units). The fitted processors, the input and
target order and the id columns ride inside the file (ONNX metadata, TorchScript /
torch.export extra files), so `plait.runtime` can turn a table into predictions with
the file alone.

What exports: every encoder Plait trains itself (cnn, audio_cnn, audio_cnn1d, audio_gru, gru,
lstm, bag, mlp, embedding, tabular_mlp, ft_transformer), every fusion and the
classification, binary, regression and multi-label heads. The text RNNs are swapped
for an equivalent twin without packed sequences (export/rnn.py), which exporters
cannot trace. Refused, with the reason:
- pretrained backbones (minilm, hf_text, hf_audio, efficientnet_lite0, timm): their
  input is the backbone's tokenizer or cached features, so the file would not be
  self-contained; serve those runs with `plait serve` instead;
- text generation (decoder): decoding is a data-dependent loop (greedy, beam search);
- retrieval (contrastive): its output is embeddings; use `plait embed`;
- detection and grounding: the boxes come back in pixels of each row's image, whose
  size the file's runtime does not read; serve those runs with `plait serve`.
"""

from __future__ import annotations

import copy
import json
import warnings
from pathlib import Path

import pandas as pd
import torch
from torch import Tensor, nn

from plait.atomic import atomic_path
from plait.encoders.pretrained.encoder import PretrainedEncoder
from plait.errors import ConfigError
from plait.export.rnn import export_friendly
from plait.heads.contrastive import ContrastiveHead
from plait.heads.decoder import DecoderHead
from plait.heads.detection import DetectionHead
from plait.heads.grounding import GroundingHead
from plait.predictor import Predictor

FORMATS = ("onnx", "torchscript", "pt2")
META_KEY = "plait.json"
META_VERSION = 1


class Exportable(nn.Module):
    """`forward(x_1, present_1, x_2, present_2, …)` in sorted input order → one
    activated output per target, in the run's target order."""

    def __init__(self, model: nn.Module, keys: list[str], targets: list[str]) -> None:
        super().__init__()
        self.model, self.keys, self.targets = model, keys, targets

    def forward(self, *args: Tensor) -> tuple[Tensor, ...]:
        inputs = {k: args[2 * i] for i, k in enumerate(self.keys)}
        present = {k: args[2 * i + 1] for i, k in enumerate(self.keys)}
        out = self.model.predict(inputs, present)
        return tuple(out[t] for t in self.targets)


def check_exportable(predictor: Predictor) -> None:
    ensemble = predictor.run.ensemble
    if ensemble is not None and ensemble.uses_members():
        names = sorted({n for weights in ensemble.weights.values() for n in weights} - {"neural"})
        raise ConfigError(
            f"cannot export: the run's predictions weight the network with {', '.join(names)} "
            "(ensemble.json), which an ONNX or torch file of the network would leave out; serve it "
            "with plait serve, or train with --candidates neural to export"
        )
    for key, proc in sorted(predictor.processors.items()):
        if proc.kind in ("video", "sound_track"):
            raise ConfigError(
                f"cannot export: input {key!r} is read from video files, whose decoding (PyAV) and "
                "frame sampling would not travel in the file; serve it with plait serve"
            )
    for group, encoder in predictor.model.encoders.items():
        if isinstance(encoder, PretrainedEncoder):
            raise ConfigError(
                f"cannot export: input {group!r} uses the pretrained encoder {encoder.source!r}, whose "
                "tokenizer or cached features would not travel in the file; serve it with plait serve"
            )
    for name, head in predictor.model.heads.items():
        if isinstance(head, DecoderHead):
            raise ConfigError(
                f"cannot export: target {name!r} generates text, a data-dependent decoding loop"
            )
        if isinstance(head, (DetectionHead, GroundingHead)):
            raise ConfigError(
                f"cannot export: target {name!r} draws boxes in pixels of each row's image, which the "
                "exported file's runtime cannot size; serve it with plait serve"
            )
        if isinstance(head, ContrastiveHead):
            raise ConfigError(
                f"cannot export: {name!r} is a retrieval task; its embeddings come from plait embed"
            )


def example_inputs(predictor: Predictor, rows: int = 2) -> tuple[Tensor, ...]:
    """Correctly shaped model inputs: `rows` empty rows through every processor (each
    handles an empty cell), so no data is needed to export."""
    args: list[Tensor] = []
    for key in sorted(predictor.processors):
        proc = predictor.processors[key]
        empty = pd.DataFrame({c: [None] * rows for c in proc.source_columns(key)})
        encoded = proc.transform(proc.select(empty, key), key, on_bad_row="missing")
        values, present = encoded.take(torch.arange(rows))
        args += [proc.to_model(values, training=False), present]
    return tuple(args)


def metadata(predictor: Predictor, fmt: str) -> str:
    return json.dumps(
        {
            "version": META_VERSION,
            "format": fmt,
            "inputs": sorted(predictor.processors),
            "targets": list(predictor.targets),
            "processors": {k: p.state() for k, p in predictor.processors.items()},
            "target_processors": {k: p.state() for k, p in predictor.targets.items()},
            "id_columns": predictor.config.id_columns,
            "on_bad_row": predictor.config.on_bad_row,
        }
    )


def export_run(run_dir: str | Path, fmt: str, output: str | Path) -> Path:
    """Export the run at `run_dir` to `output` (written atomically)."""
    if fmt not in FORMATS:
        raise ConfigError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    predictor = Predictor.load(run_dir)
    check_exportable(predictor)
    keys, targets = sorted(predictor.processors), list(predictor.targets)
    module = Exportable(export_friendly(copy.deepcopy(predictor.model)).eval(), keys, targets).eval()
    args = example_inputs(predictor)
    meta = metadata(predictor, fmt)
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(output) as tmp, torch.no_grad():  # never a half-written model file
        _write(fmt, module, args, keys, targets, meta, tmp)
    return output


# Warnings torch's exporters give for every Plait model, none of which the user can act
# on: their own deprecations, an RNN's weight list re-assigned while tracing, the one
# dynamic batch axis named on every input. Matched by message, so any other shows.
_HARMLESS = (
    (".*torch.jit.*deprecated", FutureWarning),
    ("_check_is_size will be removed", FutureWarning),
    (r"The tensor attributes ([\w.]+\._flat_weights\[\d+\](, )?)+ were assigned during export", UserWarning),
    ("# The axis name: batch will not be used, since it shares the same shape constraints", UserWarning),
)


def input_names(keys: list[str]) -> list[str]:
    return [name for k in keys for name in (f"{k}", f"{k}:present")]


def _write(
    fmt: str,
    module: nn.Module,
    args: tuple[Tensor, ...],
    keys: list[str],
    targets: list[str],
    meta: str,
    path: Path,
) -> None:
    batch = torch.export.Dim("batch", min=1)
    dynamic = {"args": tuple({0: batch} for _ in args)}  # every input: any number of rows
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)  # RNN size checks
        for message, category in _HARMLESS:
            warnings.filterwarnings("ignore", message, category)
        if fmt == "torchscript":  # deprecated upstream in favour of torch.export; kept for older runtimes
            traced = torch.jit.trace(module, args, check_trace=False)
            torch.jit.save(traced, str(path), _extra_files={META_KEY: meta})
        elif fmt == "pt2":
            program = torch.export.export(module, args, dynamic_shapes=dynamic)
            torch.export.save(program, str(path), extra_files={META_KEY: meta})
        else:
            import onnx  # only export needs the onnx package; the runtime needs onnxruntime

            program = torch.onnx.export(
                module,
                args,
                dynamo=True,
                dynamic_shapes=dynamic,
                input_names=input_names(keys),
                output_names=list(targets),
                verbose=False,
            )
            proto = program.model_proto
            onnx.helper.set_model_props(proto, {META_KEY: meta})
            onnx.save(proto, str(path))
