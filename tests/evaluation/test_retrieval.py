"""Recall@k and median rank on a case small enough to rank by hand."""

from __future__ import annotations

import pytest
import torch

from plait.evaluation.retrieval import RetrievalMetrics, ranks, retrieval_metrics

# Rows (image, caption): (A, a1), (A, a2), (B, b1), (C, c1). Image A has two captions.
IMAGES = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])  # A, A, B, C
CAPTIONS = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8], [-1.0, 0.0]])  # a1, a2 (looks like B), b1, c1
GROUPS = torch.tensor([[0, 0], [0, 1], [1, 2], [2, 3]])


def test_ranks_count_better_unrelated_items():
    relevant = torch.tensor([[True, False], [False, True]])
    query = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    index = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    assert ranks(query, index, relevant).tolist() == [1, 2]


def test_recall_and_median_rank_in_both_directions():
    metrics = retrieval_metrics(torch.stack([IMAGES, CAPTIONS], 1), GROUPS, ["image", "caption"])
    # image→caption: A finds a1 first (rank 1); B sees a2 (1.0) above b1 (0.8): rank 2; C rank 1.
    assert metrics["image_to_caption_recall@1"] == pytest.approx(2 / 3)
    assert metrics["image_to_caption_recall@5"] == 1.0
    assert metrics["image_to_caption_median_rank"] == 1.0
    # caption→image: a2 sees B (1.0) above A (0.0): rank 2; the others rank 1 (ties don't count).
    assert metrics["caption_to_image_recall@1"] == pytest.approx(3 / 4)
    assert metrics["recall@1"] == pytest.approx((2 / 3 + 3 / 4) / 2)
    assert metrics["recall@10"] == 1.0


def test_missing_inputs_count_as_misses():
    captions = CAPTIONS.clone()
    captions[3] = torch.nan  # caption c1 is missing
    metrics = retrieval_metrics(torch.stack([IMAGES, captions], 1), GROUPS, ["image", "caption"])
    # C's only caption cannot be retrieved and c1 retrieves nothing: misses, whatever k.
    assert metrics["image_to_caption_recall@1"] == pytest.approx(1 / 3)
    assert metrics["caption_to_image_recall@1"] == pytest.approx(2 / 4)
    assert metrics["caption_to_image_recall@5"] == pytest.approx(3 / 4)
    assert metrics["caption_to_image_median_rank"] == pytest.approx(1.5)  # ranks 1, 2, 1, miss (4)


def test_accumulating_batches_equals_one_pass():
    emb = torch.stack([IMAGES, CAPTIONS], 1)
    acc = RetrievalMetrics(["image", "caption"])
    acc.update(emb[:2], GROUPS[:2])
    acc.update(emb[2:], GROUPS[2:])
    assert acc.compute() == retrieval_metrics(emb, GROUPS, ["image", "caption"])
    acc.reset()
    assert acc.compute() == {}
