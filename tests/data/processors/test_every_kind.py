"""Every registered processor kind (generated from INPUT_PROCESSORS and TARGET_PROCESSORS):
fitted on a tiny table, saved as the run folder saves it (plain JSON, loaded back through
the registry by its `kind`), it transforms exactly as before; unfitted, it refuses to
transform or save. A kind added to a registry fails here until it has a tiny case below.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch

from plait.data.processors import (
    INPUT_PROCESSORS,
    TARGET_PROCESSORS,
    AudioProcessor,
    BinaryTarget,
    BoxesTarget,
    BoxTarget,
    CategoryProcessor,
    CategoryTarget,
    FeatureProcessor,
    HFTextProcessor,
    ImageProcessor,
    InputProcessor,
    MultilabelTarget,
    NumericProcessor,
    NumericTarget,
    PairTarget,
    Processor,
    SoundTrackProcessor,
    TabularProcessor,
    TargetProcessor,
    TextProcessor,
    TextTarget,
    VideoProcessor,
)
from tests.conftest import add_tags, make_table, save_tiny_bert, save_tiny_tokenizer

# A tiny table: 9 rows of coloured squares, one image and one caption missing.
ROWS = 9


def table(folder: Path) -> pd.DataFrame:
    return add_tags(make_table(folder, rows=ROWS))


def audio_column(folder: Path) -> pd.Series:
    """Three short tones (WAV, 8 kHz) and an empty cell."""
    paths = []
    for i, seconds in enumerate((0.2, 0.3, 0.25)):
        t = np.arange(int(seconds * 8000)) / 8000
        wave = (0.5 * np.sin(2 * np.pi * 220 * (i + 1) * t)).astype(np.float32)
        sf.write(folder / f"tone{i}.wav", wave, 8000)
        paths.append(f"tone{i}.wav")
    return pd.Series([*paths, "", paths[0]])


def video_column(folder: Path) -> pd.Series:
    """Two tiny clips (one with a sound track), an empty cell and a repeat."""
    from tests.video_clips import moving_square, write_clip

    tone = (0.5 * np.sin(2 * np.pi * 440 * np.arange(2000) / 8000)).astype(np.float32)
    write_clip(folder / "a.mp4", moving_square("left", frames=4, size=16), sound=tone)
    write_clip(folder / "b.mp4", moving_square("up", frames=3, size=16))
    return pd.Series(["a.mp4", "b.mp4", "", "a.mp4"])


def features(folder: Path) -> FeatureProcessor:
    pytest.importorskip("transformers", reason="cached features need a transformers backbone (extra)")
    bert = str(save_tiny_bert(folder / "bert"))
    return FeatureProcessor(
        base={"kind": "hf_text", "params": {"encoder": "hf_text", "path": bert}},
        backbone={"name": "hf_text", "path": bert},
        cache_dir=str(folder / "features"),
    )


def hf_text(folder: Path) -> HFTextProcessor:
    tokenizer = save_tiny_tokenizer(folder / "tokenizer")
    (tokenizer / "config.json").write_text("{}")  # a transformers folder; no weights needed
    return HFTextProcessor(path=str(tokenizer))


def boxes(folder: Path, frame: pd.DataFrame, kind: str) -> tuple[Processor, pd.DataFrame]:
    """Box targets on the 16×16 squares: objects of the square's colour; the row
    without an image has no object (`[]`) for boxes and is left out for a box."""
    if kind == "box":
        frame = frame[frame["image"] != ""]
        cells = [json.dumps([i % 4, 1, 8 + i % 8, 15]) for i in range(len(frame))]
        proc: Processor = BoxTarget(image="image")
    else:
        cells = [
            json.dumps([[0, 0, 8, 8 + i % 8, c]] if p else [])
            for i, (p, c) in enumerate(zip(frame["image"], frame["colour"], strict=True))
        ]
        proc = BoxesTarget(image="image")
    proc.base_dir = folder  # type: ignore[attr-defined]
    return proc, frame.assign(**{kind: cells})[[kind, "image"]]


# kind → (an unfitted processor with tiny options, the cells it reads), given the
# table's folder and the table. Options keep the tensors small.
Case = Callable[[Path, pd.DataFrame], tuple[Processor, pd.Series | pd.DataFrame]]
INPUT_CASES: dict[str, Case] = {
    "image": lambda d, t: (ImageProcessor(size=8), t["image"]),
    "audio": lambda d, t: (AudioProcessor(sample_rate=8000, n_mels=16), audio_column(d)),
    "text": lambda d, t: (TextProcessor(stop_words="english"), t["caption"]),
    "numeric": lambda d, t: (NumericProcessor(), t["size"]),
    "category": lambda d, t: (CategoryProcessor(), t["shop"]),
    "tabular": lambda d, t: (  # `store` also read as a code: an id per value
        TabularProcessor({"size": {}, "store": {"code": True}}, {"shop": {}}),
        t.assign(store=[i % 3 for i in range(len(t))])[["size", "store", "shop"]],
    ),
    "hf_text": lambda d, t: (hf_text(d), t["caption"]),
    "features": lambda d, t: (features(d), t["caption"]),
    "video": lambda d, t: (VideoProcessor(frames=2, size=8), video_column(d)),
    "sound_track": lambda d, t: (SoundTrackProcessor(sample_rate=8000, n_mels=16), video_column(d)),
}
TARGET_CASES: dict[str, Case] = {
    "category": lambda d, t: (CategoryTarget(), t["colour"]),
    "binary": lambda d, t: (BinaryTarget(), t["is_red"]),
    "numeric": lambda d, t: (NumericTarget(), t["price"]),
    "multilabel": lambda d, t: (MultilabelTarget(), t["tags"]),
    "text": lambda d, t: (TextTarget(min_frequency=1, max_length=12), t["caption"].fillna("a blank square")),
    "retrieval": lambda d, t: (PairTarget(["image", "caption"]), t[["image", "caption"]]),
    "boxes": lambda d, t: boxes(d, t, "boxes"),
    "box": lambda d, t: boxes(d, t, "box"),
}
REGISTRIES = {"input": (INPUT_PROCESSORS, INPUT_CASES), "target": (TARGET_PROCESSORS, TARGET_CASES)}
KINDS = [(part, kind) for part, (registry, _) in REGISTRIES.items() for kind in sorted(registry)]


def case(folder: Path, part: str, kind: str) -> tuple[Processor, pd.Series | pd.DataFrame]:
    registry, cases = REGISTRIES[part]
    if kind not in cases:
        pytest.fail(f"{part} processor kind {kind!r} has no tiny case: add one to {part.upper()}_CASES")
    proc, values = cases[kind](folder, table(folder))
    assert type(proc) is registry[kind] and proc.kind == kind  # the key run folders look up
    if isinstance(proc, InputProcessor):
        proc.base_dir = folder  # media paths are relative to the table's folder
    return proc, values


def saved_and_loaded(proc: Processor, part: str) -> Processor:
    """Through processors.json as plait.runfolder writes and reads it: strict JSON, the
    class found by the state's `kind`."""
    text = json.dumps(proc.state(), allow_nan=False)
    state = json.loads(text)
    loaded = REGISTRIES[part][0][state["kind"]].from_state(state)
    assert json.dumps(loaded.state(), allow_nan=False, sort_keys=True) == json.dumps(state, sort_keys=True)
    return loaded


def test_every_case_is_a_registered_kind():
    for part, (registry, cases) in REGISTRIES.items():
        assert set(cases) <= set(registry), f"{part}: unregistered {set(cases) - set(registry)}"


@pytest.mark.parametrize(("part", "kind"), KINDS)
def test_json_round_trip_transforms_the_same(tmp_path: Path, part: str, kind: str):
    proc, values = case(tmp_path, part, kind)
    if isinstance(proc, InputProcessor):
        before = proc.fit(values, kind).transform(values, kind)
        loaded = saved_and_loaded(proc, part)
        assert isinstance(loaded, InputProcessor)
        loaded.base_dir = tmp_path
        after = loaded.transform(values, kind)
        assert len(before) == len(values)
        assert torch.equal(before.values, after.values) and torch.equal(before.present, after.present)
        assert (before.index is None) == (after.index is None)
        if before.index is not None:
            assert torch.equal(before.index, after.index)
        assert before.bad_rows == after.bad_rows == []
        assert torch.equal(proc.to_model(before.values, False), loaded.to_model(after.values, False))
        assert loaded.encoder_kwargs() == proc.encoder_kwargs()
        assert loaded.modality == proc.modality
    else:
        assert isinstance(proc, TargetProcessor)
        before = proc.fit(values, kind).transform(values, kind)
        loaded = saved_and_loaded(proc, part)
        assert isinstance(loaded, TargetProcessor)
        if loaded.image_input() is not None:
            loaded.base_dir = tmp_path  # type: ignore[attr-defined]  (set per table, like an input's)
        after = loaded.transform(values, kind)
        assert len(before) == len(values) and before.dtype == after.dtype
        assert torch.equal(before, after)
        assert loaded.head_kwargs() == proc.head_kwargs() and loaded.num_classes == proc.num_classes


@pytest.mark.parametrize(("part", "kind"), KINDS)
def test_unfitted_refuses_to_transform_or_save(tmp_path: Path, part: str, kind: str):
    proc, values = case(tmp_path, part, kind)
    message = rf"{type(proc).__name__} is not fitted; call fit\(\) first"
    with pytest.raises(RuntimeError, match=message):
        proc.transform(values, kind)
    with pytest.raises(RuntimeError, match=message):
        proc.state()
