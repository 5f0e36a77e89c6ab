"""Built-in demo data sets, read from PyPI packages (no download at run time)."""

from __future__ import annotations

import pandas as pd


def easy_vqa() -> pd.DataFrame:
    """easy-VQA (PyPI `easy-vqa`, MIT): 64×64 shape images + questions → 13 answers.

    Columns: image (absolute path), question, answer, split (official train / test).
    """
    import easy_vqa as ev

    parts = []
    for split, questions, paths in (
        ("train", ev.get_train_questions(), ev.get_train_image_paths()),
        ("test", ev.get_test_questions(), ev.get_test_image_paths()),
    ):
        texts, answers, image_ids = questions
        parts.append(
            pd.DataFrame(
                {
                    "image": [paths[i] for i in image_ids],
                    "question": texts,
                    "answer": answers,
                    "split": split,
                }
            )
        )
    return pd.concat(parts, ignore_index=True)


DEMO_CONFIG = {
    # The reference model: image CNN + text GRU, features concatenated, an MLP classifier.
    "inputs": [
        {"name": "image", "type": "image", "encoder": {"name": "cnn", "channels": [8, 16, 32]}},
        {"name": "question", "type": "text", "encoder": "gru"},
    ],
    "outputs": [{"name": "answer", "type": "category"}],
    "fusion": "concat",
    "trainer": {"epochs": 8, "batch_size": 64},
}
