"""Retrieval metrics: recall@k and median rank, in every direction between towers.

Evaluation is over distinct items, as in the Flickr/COCO protocol: each distinct image
is a query against every distinct caption, and each caption against every image. An
index item is relevant to a query when some row pairs them (an image and any of its
five captions). A query's rank is the position of its best-ranked relevant item
(1 = first). A query whose own input is missing, or whose relevant items all are,
counts as a miss: never within k, and ranked below every item for the median.
"""

from __future__ import annotations

from itertools import permutations

import numpy as np
import torch
from torch import Tensor, nn

from plait.distributed import gather_objects

KS = (1, 5, 10)


def ranks(query: Tensor, index: Tensor, relevant: Tensor) -> Tensor:
    """query (Q, D), index (I, D) unit vectors; relevant (Q, I) bool → (Q,) 1-based ranks,
    0 for a miss.

    Rows of `index` holding NaN (missing inputs) cannot be retrieved; rows of `query`
    holding NaN retrieve nothing.
    """
    usable = ~index.isnan().any(1)
    index, relevant = index[usable], relevant[:, usable]
    miss = torch.zeros(len(query), dtype=torch.long)
    if len(index) == 0:
        return miss
    sims = query @ index.T  # (Q, I)
    best = sims.masked_fill(~relevant, -torch.inf).amax(1)  # (Q,) score of the best relevant item
    rank = (sims > best[:, None]).sum(1) + 1
    found = relevant.any(1) & ~query.isnan().any(1)
    return torch.where(found, rank, miss)


def _items(group: Tensor) -> tuple[Tensor, Tensor]:
    """(N,) item ids (-1 = empty) → (distinct ids, (K,) first row of each)."""
    rows = (group >= 0).nonzero().squeeze(1)
    ids, inverse = torch.unique(group[rows], return_inverse=True)
    first = torch.full((len(ids),), len(group), dtype=torch.long).scatter_reduce(0, inverse, rows, "amin")
    return ids, first


def direction_metrics(
    emb_q: Tensor, emb_i: Tensor, group_q: Tensor, group_i: Tensor, ks: tuple[int, ...] = KS
) -> dict[str, float]:
    """Rows' embeddings (N, D) and item ids (N,) of a query tower and an index tower."""
    q_ids, q_first = _items(group_q)
    i_ids, i_first = _items(group_i)
    paired = (group_q >= 0) & (group_i >= 0)
    relevant = torch.zeros(len(q_ids), len(i_ids), dtype=torch.bool)
    q_pos = torch.searchsorted(q_ids, group_q[paired])  # ids are sorted (torch.unique)
    i_pos = torch.searchsorted(i_ids, group_i[paired])
    relevant[q_pos, i_pos] = True
    r = ranks(emb_q[q_first], emb_i[i_first], relevant).numpy()
    found = r > 0
    metrics = {f"recall@{k}": float((found & (r <= k)).mean()) if len(r) else 0.0 for k in ks}
    # For the median a miss ranks last: below every index item.
    worst = np.where(found, r, len(i_ids) + 1)
    metrics["median_rank"] = float(np.median(worst)) if len(r) else 0.0
    return metrics


def retrieval_metrics(embeddings: Tensor, groups: Tensor, towers: list[str]) -> dict[str, float]:
    """embeddings (N, n, D) with NaN rows where absent; groups (N, n) item ids.

    Per direction `<query>_to_<index>_recall@k` and `_median_rank`; `recall@k` is the
    mean over directions.
    """
    out: dict[str, float] = {}
    per_k: dict[str, list[float]] = {f"recall@{k}": [] for k in KS}
    for a, b in permutations(range(len(towers)), 2):
        found = direction_metrics(embeddings[:, a], embeddings[:, b], groups[:, a], groups[:, b])
        for name, value in found.items():
            out[f"{towers[a]}_to_{towers[b]}_{name}"] = value
            if name in per_k:
                per_k[name].append(value)
    return {**{k: float(np.mean(v)) for k, v in per_k.items()}, **out}


class RetrievalMetrics(nn.Module):
    """Accumulates a retrieval target's embeddings over batches (same surface as TaskMetrics)."""

    def __init__(self, towers: list[str]) -> None:
        super().__init__()
        self.towers = list(towers)
        self._emb: list[Tensor] = []
        self._groups: list[Tensor] = []

    def update(self, pred: Tensor, target: Tensor) -> None:
        """pred (B, n, D) embeddings; target (B, n) item ids."""
        self._emb.append(pred.detach().float().cpu())
        self._groups.append(target.cpu())

    def compute(self) -> dict[str, float]:
        """Over every process's rows under DDP (each sees a shard of the validation set)."""
        parts = gather_objects((self._emb, self._groups))
        emb = [e for rank_emb, _ in parts for e in rank_emb]
        groups = [g for _, rank_groups in parts for g in rank_groups]
        if not emb:
            return {}
        # Item ids are per table, so they stay comparable across batches and processes.
        return retrieval_metrics(torch.cat(emb), torch.cat(groups), self.towers)

    def reset(self) -> None:
        self._emb, self._groups = [], []
