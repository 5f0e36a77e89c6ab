"""The training data order as state: a resumed run continues mid-epoch exactly where
the interrupted one stopped, with the rows it had not seen yet, in the same order.

The state is two numbers (epoch, batches served), carried in the checkpoint by
plait.resume.ResumeCheckpoint. Not through Lightning's own loader-state hook
(`state_dict`/`load_state_dict` on the loader): Lightning creates the training
iterator early when `configure_optimizers` asks for `estimated_stepping_batches`
(OneCycle does), before that state is loaded, and then never applies it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, Sampler


class EpochSampler(Sampler[int]):
    """A permutation of `n` rows drawn from (seed, epoch) alone, so any process can
    recompute any epoch's order; `skip` rows are left out once, at the start of the
    epoch being resumed."""

    def __init__(self, n: int, seed: int) -> None:
        self.n, self.seed = n, seed
        self.epoch = 0  # set by Lightning (set_epoch) before each training epoch
        self._resume: tuple[int, int] | None = None  # (epoch, rows already served)
        self.skipped = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def resume_at(self, epoch: int, rows: int) -> None:
        self._resume = (epoch, rows)

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        order = torch.randperm(self.n, generator=generator)
        self.skipped = 0  # rows left out at the start of this pass (the resumed ones)
        if self._resume is not None and self._resume[0] == self.epoch:
            self.skipped = self._resume[1]
            order = order[self.skipped :]
            self._resume = None
        yield from order.tolist()

    def __len__(self) -> int:
        return self.n


class ResumableLoader(DataLoader):
    """A shuffling DataLoader over an `EpochSampler` that counts the batches it has
    handed out this epoch; its state is (epoch, batches), restored by Lightning."""

    def __init__(self, dataset: Dataset, batch_size: int, seed: int, **kwargs: Any) -> None:
        self.order = EpochSampler(len(dataset), seed)  # type: ignore[arg-type]
        super().__init__(dataset, batch_size=batch_size, sampler=self.order, **kwargs)
        self._served = 0

    def __iter__(self) -> Iterator[Any]:  # type: ignore[override]
        return self._counting(super().__iter__())

    def _counting(self, batches: Iterator[Any]) -> Iterator[Any]:
        # The sampler has been read by the time the first batch exists (at once by
        # workers, else lazily), so it knows how many rows this pass skipped.
        for i, batch in enumerate(batches):
            self._served = self.order.skipped // int(self.batch_size or 1) + i + 1
            yield batch

    def position(self) -> dict[str, int]:
        """(epoch, batches served in it): where a resumed run picks up."""
        return {"epoch": self.order.epoch, "batches": self._served}

    def resume_from(self, position: dict[str, int]) -> None:
        # The epoch too: Lightning creates the first iterator before it calls set_epoch.
        self.order.set_epoch(int(position["epoch"]))
        self.order.resume_at(int(position["epoch"]), int(position["batches"]) * int(self.batch_size or 1))
