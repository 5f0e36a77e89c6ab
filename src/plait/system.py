"""The LightningModule: losses, metrics and optimisers around a built MultimodalModel."""

from __future__ import annotations

from collections.abc import Callable

import lightning as L
import torch
from torch import Tensor

from plait.config import TrainerConfig
from plait.data.collate import Batch
from plait.evaluation.metrics import TaskMetrics
from plait.evaluation.retrieval import KS, RetrievalMetrics
from plait.fusion.base import FusedOutput
from plait.model import MultimodalModel

# Linear warm-up of the "plateau" schedule: this many steps, or 5% of the budget if fewer.
WARMUP_STEPS = 200
# A retrieval run selects its epoch by validation recall from this many validation rows.
RECALL_ROWS = 100


class MultimodalSystem(L.LightningModule):
    """Trains `model` on every target; `forward` is inference only (activated outputs)."""

    def __init__(
        self,
        model: MultimodalModel,
        target_types: dict[str, str],
        num_classes: dict[str, int],
        loss_weights: dict[str, float],
        trainer_config: TrainerConfig,
        towers: dict[str, list[str]] | None = None,
        val_rows: int = 0,
    ) -> None:
        super().__init__()
        self.model = model
        if trainer_config.channels_last:
            model.to(memory_format=torch.channels_last)  # the 4-D (convolution) weights
        # model.fuse (encoders + fusion), torch.compiled on first use with trainer.compile.
        # Only this callable is compiled: `self.model` stays the plain module, so its
        # state dict, checkpoints and the saved weights keep their names.
        self._fuse: Callable[..., FusedOutput] | None = None
        self.loss_weights = loss_weights
        self.cfg = trainer_config
        self._warmup, self._base_lrs = 0, []  # the "plateau" schedule's, set with the optimiser
        # What checkpointing, early stopping and the plateau schedule follow: val_loss, or
        # for a run whose one target is retrieval, rsum (recall@1 + @5 + @10, the usual
        # model-selection criterion of image-text retrieval) over the whole validation
        # split: a contrastive loss depends on which pairs happen to share a batch. Among
        # fewer than RECALL_ROWS validation rows recall saturates, and the loss judges better.
        by_recall = list(target_types.values()) == ["retrieval"] and val_rows >= RECALL_ROWS
        self.monitor, self.monitor_mode = ("val_rsum", "max") if by_recall else ("val_loss", "min")
        towers = towers or {}  # retrieval targets: their tower columns
        self.val_metrics = torch.nn.ModuleDict(
            {
                t: RetrievalMetrics(towers[t]) if kind == "retrieval" else TaskMetrics(kind, num_classes[t])
                for t, kind in target_types.items()
            }
        )

    def forward(self, inputs: dict[str, Tensor], present: dict[str, Tensor]) -> dict[str, Tensor]:
        return self.model.predict(inputs, present)

    def on_after_batch_transfer(self, batch: Batch, dataloader_idx: int) -> Batch:
        if self.cfg.channels_last:  # image batches (B, C, H, W); other inputs have fewer dims
            batch.inputs = {
                k: v.contiguous(memory_format=torch.channels_last) if v.dim() == 4 else v
                for k, v in batch.inputs.items()
            }
        return batch

    def _loss(self, batch: Batch) -> tuple[Tensor, dict[str, Tensor]]:
        if self._fuse is None:
            self._fuse = torch.compile(self.model.fuse) if self.cfg.compile else self.model.fuse
        fused = self._fuse(batch.inputs, batch.present)
        raw, loss = {}, 0.0
        for t, head in self.model.heads.items():
            raw[t], head_loss = head.forward_loss(self.model.head_input(head, fused), batch.targets[t])
            loss = loss + self.loss_weights[t] * head_loss
        return loss, raw  # type: ignore[return-value]

    def _drop_modalities(self, present: dict[str, Tensor]) -> dict[str, Tensor]:
        """Randomly mark inputs missing (training only); every row keeps at least one."""
        rates = self.cfg.modality_dropout
        if not rates:
            return present
        dropped = {}
        for key, mask in present.items():
            rate = rates.get(key, 0.0) if isinstance(rates, dict) else rates
            dropped[key] = mask & (torch.rand(mask.shape, device=mask.device) >= rate) if rate else mask
        keys = list(present)
        none_left = ~torch.stack([dropped[k] for k in keys]).any(0)  # (B,) rows that lost everything
        # Such a row gets back one of its inputs, chosen at random among those it has.
        scores = torch.rand(len(keys), len(none_left), device=none_left.device)
        scores = scores.masked_fill(~torch.stack([present[k] for k in keys]), -1.0)
        chosen = scores.argmax(0)  # (B,)
        return {k: dropped[k] | (none_left & (chosen == i) & present[k]) for i, k in enumerate(keys)}

    def batch_loss(self, batch: Batch) -> Tensor:
        """() the weighted loss of one batch, outside a Trainer (plait.tune times a step)."""
        return self._loss(batch)[0]

    def training_step(self, batch: Batch, batch_idx: int) -> Tensor:
        batch = Batch(batch.inputs, self._drop_modalities(batch.present), batch.targets, batch.rows)
        loss, _ = self._loss(batch)
        # sync_dist: under DDP the epoch value is the mean over processes (a no-op alone).
        n = len(batch)
        self.log(
            "train_loss", loss, on_step=False, on_epoch=True, prog_bar=True, batch_size=n, sync_dist=True
        )
        return loss

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        loss, raw = self._loss(batch)
        # Every process must see the same val_loss: checkpointing and early stopping follow it.
        self.log("val_loss", loss, on_epoch=True, prog_bar=True, batch_size=len(batch), sync_dist=True)
        for t, out in raw.items():
            self.val_metrics[t].update(self.model.heads[t].activate(out), batch.targets[t])

    def on_validation_epoch_end(self) -> None:
        # compute() already covers every process's rows (torchmetrics syncs its state,
        # RetrievalMetrics gathers); sync_dist then averages equal values.
        for t, metrics in self.val_metrics.items():
            prefix = "val_" if len(self.val_metrics) == 1 else f"val_{t}/"
            values = metrics.compute()
            if isinstance(metrics, RetrievalMetrics):
                values["rsum"] = sum(values[f"recall@{k}"] for k in KS)
            for name, value in values.items():
                shown = name in ("accuracy", "rmse", "recall@1")
                self.log(prefix + name, value, prog_bar=shown, sync_dist=True)
            metrics.reset()

    def _parameter_groups(self) -> list[dict]:
        """Trainable parameters; those of pretrained backbones get their own (lower) rate."""
        lr = self.cfg.learning_rate
        groups, taken = [], set()
        for encoder in self.model.encoders.values():
            params = getattr(encoder, "backbone_parameters", list)()
            if params:
                rate = encoder.backbone_lr if encoder.backbone_lr is not None else lr / 10
                groups.append({"params": params, "lr": rate})
                taken.update(id(p) for p in params)
        rest = [p for p in self.parameters() if p.requires_grad and id(p) not in taken]
        return [{"params": rest, "lr": lr}, *groups]

    def configure_optimizers(self):  # noqa: ANN201 - Lightning's union return type
        groups = self._parameter_groups()
        optimizer = torch.optim.AdamW(groups, weight_decay=self.cfg.weight_decay)
        if self.cfg.scheduler == "constant":
            return optimizer
        steps = self.trainer.estimated_stepping_batches
        if self.cfg.scheduler == "plateau":
            return {"optimizer": optimizer, "lr_scheduler": self._plateau(optimizer, steps)}
        if self.cfg.scheduler == "onecycle":
            scheduler = torch.optim.lr_scheduler.OneCycleLR(
                optimizer, max_lr=[g["lr"] for g in groups], total_steps=steps, pct_start=0.15
            )
        else:
            scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def _plateau(self, optimizer: torch.optim.Optimizer, steps: int | float) -> dict:
        """Warm up linearly (on_train_batch_start), then halve the rate whenever the
        monitored value (val_loss) has not improved for a third of the early-stopping
        patience. Unlike a schedule spread over `trainer.epochs`, this anneals whenever
        the run converges, so early stopping never ends a run at its peak rate."""
        self._warmup = max(1, min(WARMUP_STEPS, int(steps * 0.05)))
        self._base_lrs = [g["lr"] for g in optimizer.param_groups]
        scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, self.monitor_mode, factor=0.5, patience=max(1, self.cfg.patience // 3), min_lr=1e-6
        )
        return {"scheduler": scheduler, "monitor": self.monitor, "interval": "epoch"}

    def on_train_batch_start(self, batch: Batch, batch_idx: int) -> None:
        # A hand-written warm-up: a LambdaLR beside ReduceLROnPlateau would reset the
        # rates it lowers, and Lightning steps a plateau scheduler once per validation.
        if self.cfg.scheduler != "plateau" or self.global_step >= self._warmup:
            return
        optimizer = self.optimizers()
        optimizer = getattr(optimizer, "optimizer", optimizer)  # Lightning's wrapper, or none
        for group, base in zip(optimizer.param_groups, self._base_lrs, strict=True):
            group["lr"] = base * (self.global_step + 1) / self._warmup
