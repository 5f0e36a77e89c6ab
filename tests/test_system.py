"""The LightningModule: modality dropout goes through the presence masks."""

import torch

from plait.config import TrainerConfig
from plait.system import MultimodalSystem


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
