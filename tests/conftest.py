"""Tiny synthetic tables: coloured squares + short texts + numbers + categories.

The label is learnable from either the image colour or the text, so a few epochs
of training separate the classes and tests can check real behaviour quickly.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

COLOURS = {"red": (220, 30, 30), "green": (30, 200, 40), "blue": (30, 40, 220)}
# Real data sets live beside the repository (../shared/data), never inside it.
SHARED_DATA = Path(
    os.environ.get("PLAIT_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")
)


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist (`make test` runs `-n auto`), one torch thread per worker, for
    it and the `plait` processes it starts: workers share the cores, and two threads
    each would oversubscribe them."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        import torch

        os.environ["OMP_NUM_THREADS"] = "1"
        torch.set_num_threads(1)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The trainings on real data first: they are the longest, and started last they
    would leave the other workers idle at the end of a parallel run."""
    items.sort(key=lambda item: 0 if item.path.name == "test_slow.py" else 1)  # stable: keeps file order


# Small components so each test trains in seconds.
# A tenth held out, as before plait.recipe sized the split (tests/test_presets.py tests
# the sizing): tiny tables keep enough training rows to learn in a few epochs. The
# network alone: the candidates beside it (preset medium on a table with numbers, and
# best) are tested in tests/ensemble.
TINY_CONFIG = {
    "candidates": ["neural"],
    "trainer": {"epochs": 3, "batch_size": 8, "learning_rate": 0.01, "progress": False, "val_fraction": 0.1},
}
TINY_ENCODERS = {
    "image": {"name": "cnn", "channels": [4, 8], "out_dim": 8},
    "text": {"name": "gru", "embed_dim": 8, "hidden_dim": 8},
}


def make_table(folder: Path, rows: int = 60, seed: int = 0, missing: bool = True) -> pd.DataFrame:
    """Write images under folder/images and return the table (paths relative to folder)."""
    rng = np.random.default_rng(seed)
    (folder / "images").mkdir(parents=True, exist_ok=True)
    names = list(COLOURS)
    records = []
    for i in range(rows):
        colour = names[i % 3]
        pixels = np.clip(np.array(COLOURS[colour]) + rng.normal(0, 20, (16, 16, 3)), 0, 255)
        path = f"images/{i}.png"
        Image.fromarray(pixels.astype(np.uint8)).save(folder / path)
        records.append(
            {
                "id": f"row{i}",
                "image": path,
                "caption": f"a {colour} square number {i % 7}",
                "size": float(i % 5) + rng.normal(0, 0.1),
                "shop": ["north", "south"][i % 2],
                "colour": colour,
                "is_red": "yes" if colour == "red" else "no",
                "price": 10.0 * (names.index(colour) + 1) + rng.normal(0, 0.5),
            }
        )
    frame = pd.DataFrame(records)
    if missing and rows > 7:
        frame.loc[5, "image"] = ""  # a missing image
        frame.loc[7, "caption"] = None  # a missing text
    return frame


def add_tags(frame: pd.DataFrame) -> pd.DataFrame:
    """A multilabel `tags` column ("cool|north"): learnable from the colour and the shop;
    red squares from the south have no tag (`[]`, the empty set in a CSV)."""
    by_colour = {"red": [], "green": ["cool", "natural"], "blue": ["cool"]}
    pairs = zip(frame["colour"], frame["shop"], strict=True)
    tags = [by_colour[c] + (["north"] if s == "north" else []) for c, s in pairs]
    return frame.assign(tags=["|".join(t) if t else "[]" for t in tags])


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test gets its own empty cache folder (decoded columns, pretrained features):
    the suite never writes to ~/.cache, and no test sees another's entries. Subprocesses
    (the CLI tests) inherit it through the environment."""
    monkeypatch.setenv("PLAIT_CACHE_DIR", str(tmp_path_factory.mktemp("plait-cache")))


@pytest.fixture
def table_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "data"
    make_table(folder).to_csv(folder / "table.csv", index=False)
    return folder


@pytest.fixture
def table_csv(table_dir: Path) -> Path:
    return table_dir / "table.csv"


def tiny_config(**overrides: object) -> dict:
    config = {
        "inputs": [
            {"name": "image", "type": "image", "encoder": TINY_ENCODERS["image"]},
            {"name": "caption", "type": "text", "encoder": TINY_ENCODERS["text"]},
            {"name": "size", "type": "numeric"},
            {"name": "shop", "type": "category"},
        ],
        **TINY_CONFIG,
    }
    config.update(overrides)
    # A deep copy: tests change `config["trainer"]`, which must not leak into TINY_CONFIG.
    return copy.deepcopy(config)


def tiny_run(folder: Path, rows: int = 24, epochs: int = 1) -> tuple[Path, Path]:
    """Train a tiny run on a fresh table in `folder`; (run folder, table path)."""
    from plait.train import fit

    make_table(folder, rows=rows).to_csv(folder / "t.csv", index=False)
    config = tiny_config()
    config["trainer"].update(epochs=epochs, progress=False)
    fit(folder / "t.csv", label="colour", config=config, out=folder / "run", verbose=False)
    return folder / "run", folder / "t.csv"


# A word-piece vocabulary for tiny pretrained text models (the demo table's words).
WORDS = "a the red green blue square circle small big shape of colour is on".split()


def save_tiny_tokenizer(folder: Path) -> Path:
    """A BERT-style `tokenizer.json` over WORDS in `folder` (no model weights)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors

    folder.mkdir(parents=True, exist_ok=True)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", *WORDS]
    tokenizer = Tokenizer(models.WordPiece({w: i for i, w in enumerate(vocab)}, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.post_processor = processors.BertProcessing(("[SEP]", 3), ("[CLS]", 2))
    tokenizer.save(str(folder / "tokenizer.json"))
    return folder


def save_tiny_bert(folder: Path, seed: int = 0) -> Path:
    """A randomly initialised two-layer BERT (hidden size 16) and its tokenizer, saved
    as a local `transformers` folder (needs the `pretrained` extra)."""
    import torch
    import transformers

    torch.manual_seed(seed)
    config = transformers.BertConfig(
        vocab_size=len(WORDS) + 4,
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=64,
    )
    transformers.BertModel(config).save_pretrained(folder)
    return save_tiny_tokenizer(folder)
