"""The LightningModule: modality dropout goes through the presence masks; one batch of
training and validation through Lightning logs the stable metric names."""

from pathlib import Path

import pytest
import torch

from plait.config import TrainerConfig, as_config
from plait.data.datamodule import make_loader
from plait.data.prepare import table_datasets
from plait.data.schema import resolve_config
from plait.system import MultimodalSystem
from plait.train import build_system
from tests.conftest import make_table, tiny_config


def system(rate) -> MultimodalSystem:
    model = torch.nn.Module()
    return MultimodalSystem(model, {}, {}, {}, TrainerConfig(modality_dropout=rate))  # type: ignore[arg-type]


def test_no_dropout_leaves_masks_alone():
    present = {"a": torch.ones(8, dtype=torch.bool)}
    assert system(0.0)._drop_modalities(present) is present


def test_dropout_hides_inputs_but_never_all_of_a_row():
    torch.manual_seed(0)
    present = {"a": torch.ones(2000, dtype=torch.bool), "b": torch.ones(2000, dtype=torch.bool)}
    present["b"][:10] = False  # rows with only "a" must keep it
    out = system(0.5)._drop_modalities(present)
    assert out["a"][:10].all()
    kept = torch.stack(list(out.values())).any(0)
    assert kept.all()
    assert 0.3 < 1 - out["a"][10:].float().mean() < 0.45  # ~0.5, minus restored rows


def test_per_input_rates():
    torch.manual_seed(0)
    present = {"a": torch.ones(1000, dtype=torch.bool), "b": torch.ones(1000, dtype=torch.bool)}
    out = system({"a": 0.3})._drop_modalities(present)
    assert out["b"].all() and 0.2 < 1 - out["a"].float().mean() < 0.4


def test_a_row_with_nothing_present_stays_empty():
    present = {"a": torch.zeros(4, dtype=torch.bool), "b": torch.zeros(4, dtype=torch.bool)}
    out = system(0.5)._drop_modalities(present)
    assert not out["a"].any() and not out["b"].any()


def test_a_retrieval_run_follows_recall_and_every_other_run_val_loss():
    model = torch.nn.Module()
    towers = {"retrieval": ["a", "b"]}

    def monitor(types: dict[str, str], val_rows: int) -> tuple[str, str]:
        classes = {t: 3 for t in types if t != "retrieval"}
        system = MultimodalSystem(model, types, classes, {}, TrainerConfig(), towers, val_rows)  # type: ignore[arg-type]
        return system.monitor, system.monitor_mode

    assert monitor({"retrieval": "retrieval"}, 200) == ("val_rsum", "max")
    assert monitor({"retrieval": "retrieval"}, 20) == ("val_loss", "min")  # recall@10 of 20 saturates
    assert monitor({"retrieval": "retrieval", "y": "category"}, 200) == ("val_loss", "min")


@pytest.mark.filterwarnings("ignore:.*LeafSpec.*is deprecated")  # inside Lightning
@pytest.mark.parametrize(
    ("labels", "metrics"),
    [
        (["colour"], {"val_accuracy", "val_macro_f1", "val_balanced_accuracy"}),
        # With several targets each one's metrics are prefixed with its name.
        (
            ["colour", "price"],
            {"val_colour/accuracy", "val_colour/macro_f1", "val_colour/balanced_accuracy"}
            | {"val_price/rmse", "val_price/mae", "val_price/r2"},
        ),
    ],
)
def test_fast_dev_run_trains_validates_and_logs(tmp_path: Path, labels: list[str], metrics: set[str]):
    """One training and one validation batch through Lightning, built as plait.train
    builds a run: resolved config → fitted processors and datasets → model → system."""
    import lightning as L

    frame = make_table(tmp_path, rows=16)  # and its images
    cfg = resolve_config(frame, as_config(tiny_config()), labels)
    processors, targets, datasets = table_datasets(cfg, frame, tmp_path)
    system = build_system(cfg, processors, targets, datasets["val"].n_rows)
    model = system.model
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    trainer = L.Trainer(
        fast_dev_run=True,
        accelerator="cpu",
        enable_progress_bar=False,
        enable_model_summary=False,
        logger=False,
        default_root_dir=tmp_path,
    )
    loaders = [make_loader(datasets[p], 4, p == "train", num_workers=0) for p in ("train", "val")]
    trainer.fit(system, *loaders)
    assert trainer.num_training_batches == 1 and trainer.num_val_batches == [1]
    logged = trainer.callback_metrics
    assert set(logged) == {"train_loss", "val_loss", *metrics}
    assert all(torch.isfinite(v) for v in logged.values())
    # The training step stepped the optimiser: every encoder and every head moved.
    moved = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    parts = [f"encoders.{g}." for g in model.encoders] + [f"heads.{t}." for t in labels]
    assert all(any(n.startswith(part) for n in moved) for part in parts)
