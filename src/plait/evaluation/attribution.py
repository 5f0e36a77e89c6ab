"""Per-row explanations: how much each input moved one prediction, and where in an
image the model looked.

- Contribution of an input to a row's prediction, by ablation: the predicted class's
  probability (or the predicted value) with every input, minus the same with that
  input removed through its presence mask. Positive: the input pushed toward the
  prediction.
- Image saliency: the gradient of the predicted score with respect to the pixels
  (Simonyan et al. 2014), through Captum's `Saliency`, largest over colour channels,
  saved as a PNG beside the image. It needs pixels, so encoders that read cached
  features (frozen pretrained, `cache: true`) have none.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import torch
from torch import Tensor

from plait.atomic import atomic_path
from plait.data.dataset import TableDataset
from plait.data.fingerprint import media_columns
from plait.data.processors import BinaryTarget, CategoryTarget, ImageProcessor
from plait.data.table import read_table
from plait.errors import ConfigError
from plait.inference import Run
from plait.output_paths import check_output_file, table_inputs


def explain_rows(
    run: Run,
    data: str | Path | pd.DataFrame,
    rows: Sequence[int],
    output_dir: str | Path | None = None,
    target: str | None = None,
    base_dir: str | Path | None = None,
    overwrite: bool = False,
) -> pd.DataFrame:
    """One line per requested row (1-based, as in error messages): the prediction, its
    score, and `contribution_<input>` per input. With `output_dir`, a saliency PNG per
    image input and row (listed in `saliency_<input>`); a PNG already there is replaced
    only with `overwrite`, and never one the table or the run reads."""
    target = target or next(iter(run.targets))
    proc = run.targets.get(target)
    if proc is None or proc.kind not in ("category", "binary", "numeric"):
        raise ConfigError(f"per-row explanations need a classification or regression target, not {target!r}")
    table = read_table(data, base_dir)
    bad = [r for r in rows if not 1 <= r <= len(table.frame)]
    if bad or not rows:
        raise ConfigError(
            f"--rows must be row numbers from 1 to {len(table.frame)}, got {list(rows) or 'none'}"
        )
    frame = table.frame.iloc[[r - 1 for r in rows]].reset_index(drop=True)
    if output_dir is not None:  # before any work
        if Path(output_dir).exists() and not Path(output_dir).is_dir():
            raise ConfigError(f"--output-dir {output_dir} is a file; name a folder for the PNGs")
        inputs = table_inputs(data, table.frame, table.base_dir, media_columns(run.config))
        if run.run_dir is not None:
            inputs.add_folder(run.run_dir, "a file of the run folder")
        for key in sorted(run.processors):
            if run.processors[key].modality == "image":
                for row in rows:
                    check_output_file(saliency_path(Path(output_dir), row, key), overwrite, inputs)
    dataset = TableDataset.from_frame(frame, run.processors, base_dir=table.base_dir, on_bad_row="missing")
    batch = dataset.__getitems__(list(range(len(frame))))
    keys = sorted(run.processors)

    with torch.inference_mode():  # through the ensemble when the run has one
        clean = run.predict(batch.inputs, batch.present)[target]
        chosen = _chosen(clean)
        scores = _score(clean, chosen)
        result = pd.DataFrame({"row": list(rows)})
        result["predicted"] = _labels(proc, clean, chosen)
        result["score"] = scores.numpy()
        for key in keys:
            present = {k: m & (k != key) for k, m in batch.present.items()}
            without = _score(run.predict(batch.inputs, present)[target], chosen)
            result[f"contribution_{key}"] = (scores - without).numpy()

    if output_dir is not None:
        folder = Path(output_dir)
        folder.mkdir(parents=True, exist_ok=True)
        for key in keys:
            processor = run.processors[key]
            if processor.modality != "image":
                continue
            if not isinstance(processor, ImageProcessor):
                result[f"saliency_{key}"] = "none: the encoder reads cached features (set cache: false)"
                continue
            maps = saliency(run, batch.inputs, batch.present, key, target, chosen)
            paths = []
            for i, row in enumerate(rows):
                if not bool(batch.present[key][i]):
                    paths.append("none: no image in this row")
                    continue
                path = saliency_path(folder, row, key)
                _save_png(
                    processor, batch.inputs[key][i], maps[i], path, f"row {row}: {result['predicted'][i]}"
                )
                paths.append(str(path))
            result[f"saliency_{key}"] = paths
    return result


def saliency_path(folder: Path, row: int, key: str) -> Path:
    return folder / f"row{row}_{key}_saliency.png"


def saliency(
    run: Run,
    inputs: dict[str, Tensor],
    present: dict[str, Tensor],
    key: str,
    target: str,
    chosen: Tensor | None,
) -> Tensor:
    """(B, H, W) absolute gradient of each row's predicted score w.r.t. image `key`, through
    the network (an ensemble's other members read cached features, not pixels)."""
    from captum.attr import Saliency  # imported here: only explanations need it

    model = run.model

    def forward(image: Tensor) -> Tensor:
        return model.predict({**inputs, key: image}, present)[target]  # (B, C) or (B,)

    image = inputs[key].detach().clone().float().requires_grad_(True)
    target_index = None if chosen is None else chosen.tolist()
    grads = Saliency(forward).attribute(image, target=target_index, abs=True)  # (B, C, H, W)
    return grads.amax(dim=1).detach()


def _chosen(pred: Tensor) -> Tensor | None:
    """Predicted class per row for multi-class probabilities (B, C); None otherwise."""
    return pred.argmax(1) if pred.dim() == 2 else None


def _score(pred: Tensor, chosen: Tensor | None) -> Tensor:
    """(B,) the predicted class's probability, or the value (binary: P(positive))."""
    return pred.gather(1, chosen[:, None]).squeeze(1) if chosen is not None else pred


def _labels(proc: object, pred: Tensor, chosen: Tensor | None) -> list:
    if isinstance(proc, BinaryTarget):  # at its tuned threshold
        return proc.decide(pred)
    if isinstance(proc, CategoryTarget):
        return [proc.classes_[i] for i in chosen.tolist()]
    return pred.tolist()


def _save_png(processor: ImageProcessor, image: Tensor, heat: Tensor, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    mean = torch.tensor(processor.mean_).view(-1, 1, 1)
    std = torch.tensor(processor.std_).view(-1, 1, 1)
    pixels = image.detach().float() * std + mean  # undo to_model's normalisation
    pixels = pixels.permute(1, 2, 0).clamp(0, 1).numpy()  # (H, W, C) in [0, 1]
    heat = heat.numpy()
    heat = heat / heat.max() if heat.max() > 0 else heat
    fig, axes = plt.subplots(1, 2, figsize=(6, 3.2))
    axes[0].imshow(pixels.squeeze(-1) if pixels.shape[-1] == 1 else pixels, cmap="gray")
    axes[0].set_title("input")
    axes[1].imshow(pixels.mean(-1), cmap="gray")
    axes[1].imshow(heat, cmap="inferno", alpha=0.6)
    axes[1].set_title("saliency")
    for ax in axes:
        ax.axis("off")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    with atomic_path(path) as tmp:  # never a half-written PNG
        fig.savefig(tmp, dpi=100)
    plt.close(fig)
