"""Fuzzed inputs (issue 11): random bytes, truncated and oversized files, odd image modes,
odd audio headers, any Unicode, any cell. Every outcome is a valid tensor or a DataError
naming the column and row, never another exception, a hang or unbounded memory.

Example counts are chosen to keep this file near 30 s on 2 cores; they are listed per
target in docs/benchmarks.md.
"""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from torch import Tensor

from plait.data.processors import (
    AudioProcessor,
    BinaryTarget,
    CategoryProcessor,
    CategoryTarget,
    ImageProcessor,
    MultilabelTarget,
    NumericProcessor,
    NumericTarget,
    TextProcessor,
)
from plait.errors import DataError

# Pillow warns about the corrupt TIFF/EXIF data these tests feed it on purpose.
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning:PIL.TiffImagePlugin")


def fuzz(examples: int) -> Callable[[Any], Any]:
    # No example database: CI runs leave no .hypothesis folder behind.
    return settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )


def outcome(run: Callable[[], Any], column: str) -> Any:
    """The result of `run`, or None for a DataError naming `column` (one line)."""
    try:
        return run()
    except DataError as err:
        message = str(err)
        assert "\n" not in message and f"column {column!r}" in message, message
        return None


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


def peak_rss_mb() -> float | None:
    """This process's peak resident memory since the last reset (Linux), in MB."""
    status = Path("/proc/self/status")
    if not status.exists():
        return None
    line = next(x for x in status.read_text().splitlines() if x.startswith("VmHWM"))
    return int(line.split()[1]) / 1024


def reset_peak_rss() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS
        return True
    except OSError:
        return False


# -- images -----------------------------------------------------------------------

MODES = ["1", "L", "P", "RGB", "RGBA", "LA", "CMYK", "I;16", "I", "F", "YCbCr"]
FORMATS = {"PNG": ".png", "JPEG": ".jpg", "GIF": ".gif", "BMP": ".bmp", "TIFF": ".tif", "WEBP": ".webp"}


def image_processor(folder: Path, grayscale: bool = False) -> ImageProcessor:
    proc = ImageProcessor(size=8, grayscale=grayscale, mean=[0.5] * (1 if grayscale else 3))
    proc.std = list(proc.mean)
    proc.base_dir = folder
    return proc.fit(pd.Series([], dtype=object), "img")


def encode_image(mode: str, width: int, height: int, fmt: str, seed: int) -> bytes:
    """A small image of `mode` with random pixels, saved as `fmt` (converted when the
    format cannot hold the mode)."""
    rng = np.random.default_rng(seed)
    img = Image.new(mode, (width, height))
    if mode == "F":
        img = Image.fromarray(rng.normal(size=(height, width)).astype(np.float32))
    elif mode in ("I;16", "I"):
        img = Image.fromarray(rng.integers(0, 65536, (height, width)).astype(np.uint16)).convert(mode)
    else:
        img = Image.frombytes("RGB", (width, height), rng.bytes(width * height * 3)).convert(mode)
    buf = io.BytesIO()
    try:
        img.save(buf, fmt)
    except (OSError, ValueError, KeyError):
        buf = io.BytesIO()
        img.convert("RGB").save(buf, fmt)
    return buf.getvalue()


def check_image(proc: ImageProcessor, folder: Path, name: str, data: bytes) -> Tensor | None:
    (folder / name).write_bytes(data)
    enc = outcome(lambda: proc.transform(pd.Series([name]), "img"), "img")
    if enc is None:
        missing = proc.transform(pd.Series([name]), "img", on_bad_row="missing")
        assert missing.bad_rows == [0] and not missing.present[0]
        return None
    assert enc.values.dtype == torch.uint8 and enc.values.shape == (2, proc.channels, 8, 8)
    assert enc.present.tolist() == [True] and enc.bad_rows == []
    return enc.values[1]


@fuzz(150)
@given(
    mode=st.sampled_from(MODES),
    width=st.integers(1, 40),
    height=st.integers(1, 40),
    fmt=st.sampled_from(sorted(FORMATS)),
    seed=st.integers(0, 2**32 - 1),
    grayscale=st.booleans(),
)
def test_fuzz_image_modes_and_sizes_decode(folder, mode, width, height, fmt, seed, grayscale):
    proc = image_processor(folder, grayscale)
    data = encode_image(mode, width, height, fmt, seed)
    assert check_image(proc, folder, "valid" + FORMATS[fmt], data) is not None  # every one decodes


@fuzz(200)
@given(
    fmt=st.sampled_from(sorted(FORMATS)),
    mode=st.sampled_from(MODES),
    cut=st.floats(0.0, 1.0),
    flips=st.lists(st.tuples(st.floats(0.0, 1.0, exclude_max=True), st.integers(0, 255)), max_size=8),
    suffix=st.sampled_from([".png", ".jpg", ".gif", ".dat"]),
)
def test_fuzz_image_truncated_and_corrupted(folder, fmt, mode, cut, flips, suffix):
    data = bytearray(encode_image(mode, 12, 9, fmt, 0))
    for where, byte in flips:  # corrupt a few bytes, headers included
        data[int(where * len(data))] = byte
    check_image(
        image_processor(folder), folder, "mangled" + suffix, bytes(data[: max(1, int(cut * len(data)))])
    )


@fuzz(100)
@given(
    data=st.binary(max_size=2048),
    magic=st.sampled_from([b"", b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF89a", b"BM", b"II*\x00"]),
)
def test_fuzz_image_random_bytes(folder, data, magic):
    check_image(image_processor(folder), folder, "random.png", magic + data)


@pytest.mark.parametrize("mode", MODES + ["PA", "LAB", "RGBX", "I;16B"])
def test_each_odd_image_mode_decodes(tmp_path: Path, mode: str):
    img = Image.new(mode, (5, 3))
    if mode == "P":
        img.info["transparency"] = 0  # a palette with a transparent entry
    path = tmp_path / ("odd.png" if mode in ("1", "L", "P", "RGB", "RGBA", "LA", "I;16") else "odd.tif")
    try:
        img.save(path, transparency=0) if mode == "P" else img.save(path)
    except (OSError, ValueError, KeyError):
        pytest.skip(f"Pillow cannot save mode {mode} as {path.suffix}")
    assert check_image(image_processor(tmp_path), tmp_path, path.name, path.read_bytes()) is not None


def test_high_depth_images_are_scaled_not_clipped(tmp_path: Path):
    proc = image_processor(tmp_path, grayscale=True)
    Image.fromarray(np.full((4, 4), 40000, np.uint16)).save(tmp_path / "grey16.png")  # opens as I;16
    Image.fromarray(np.full((4, 4), 0.5, np.float32)).save(tmp_path / "half.tif")  # F in 0..1
    Image.fromarray(np.array([[0, np.nan], [np.inf, 4]], np.float32)).save(tmp_path / "wild.tif")
    assert Image.open(tmp_path / "grey16.png").mode == "I;16"
    values = proc.transform(pd.Series(["grey16.png", "half.tif", "wild.tif"]), "img").values[1:]
    assert values[0].unique().tolist() == [40000 // 257]  # not 255, as Pillow's convert gives
    assert values[1].unique().tolist() == [128]
    assert values[2].min() == 0 and values[2].max() == 255  # NaN, inf → 0; stretched min..max


def test_one_pixel_image(tmp_path: Path):
    Image.new("RGB", (1, 1), (200, 10, 30)).save(tmp_path / "dot.png")
    pixel = check_image(image_processor(tmp_path), tmp_path, "dot.png", (tmp_path / "dot.png").read_bytes())
    assert pixel[:, 0, 0].tolist() == [200, 10, 30]


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_header_only(width: int, height: int) -> bytes:
    """A 1×1 PNG whose IHDR is patched to declare width×height (CRC fixed)."""
    buf = io.BytesIO()
    Image.new("RGB", (1, 1)).save(buf, "PNG")
    data = bytearray(buf.getvalue())
    data[16:24] = struct.pack(">II", width, height)  # IHDR body starts at byte 16
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


def png_bomb(width: int, height: int) -> bytes:
    """A valid grey PNG of width×height zeros: ~100 KB on disk for 10,000×10,000, built
    without holding the pixels."""
    packer = zlib.compressobj(9)
    row = b"\x00" * (width + 1)  # filter byte + pixels
    body = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", body) + png_chunk(b"IEND", b"")
    )


def bmp_header_only(width: int, height: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (1, 1)).save(buf, "BMP")
    data = bytearray(buf.getvalue())
    data[18:26] = struct.pack("<ii", width, height)
    return bytes(data)


@pytest.mark.parametrize("name", ["header.png", "bomb.png", "header.bmp", "huge_header.png", "just_over.png"])
def test_oversized_images_are_refused_before_decoding(tmp_path: Path, name: str):
    data = {
        "header.png": lambda: png_header_only(10_000, 10_000),
        "bomb.png": lambda: png_bomb(10_000, 10_000),  # decodes to 100 MB grey, 400 MB RGB
        "header.bmp": lambda: bmp_header_only(10_000, 10_000),
        "huge_header.png": lambda: png_header_only(2**31 - 1, 2**31 - 1),  # past Pillow's own limit
        "just_over.png": lambda: png_header_only(8000, 8001),  # 64,008,000 pixels
    }[name]()
    (tmp_path / name).write_bytes(data)
    proc = image_processor(tmp_path)
    measured = reset_peak_rss()
    before = peak_rss_mb()
    with pytest.raises(
        DataError, match=r"column 'img', row 1: image too large to decode .*max_pixels=64,000,000"
    ):
        proc.transform(pd.Series([name]), "img")
    if measured and before is not None:
        assert peak_rss_mb() - before < 50  # refused from the header: nothing decoded
    enc = proc.transform(pd.Series([name]), "img", on_bad_row="missing")
    assert enc.bad_rows == [0]


def test_max_pixels_is_an_option(tmp_path: Path):
    Image.new("RGB", (20, 20)).save(tmp_path / "small.png")
    proc = ImageProcessor(size=8, max_pixels=399)
    proc.base_dir = tmp_path
    with pytest.raises(DataError, match=r"20×20 = 400 pixels\).*max_pixels=399"):
        proc.fit(pd.Series(["small.png"]), "img")
    with pytest.raises(DataError, match="max_pixels must be a positive integer"):
        ImageProcessor(max_pixels=0).fit(pd.Series([], dtype=object), "img")


# -- audio ------------------------------------------------------------------------


def wav_bytes(rate: int, channels: int, fmt: str, samples: np.ndarray, declared: int | None) -> bytes:
    """A hand-written WAV (any rate, channel count, declared data size)."""
    code, bits, dtype = {"pcm8": (1, 8, "u1"), "pcm16": (1, 16, "<i2"), "float": (3, 32, "<f4")}[fmt]
    frames = samples[: samples.size // channels * channels].reshape(-1, channels)
    if fmt == "float":
        body = frames.astype(dtype).tobytes()
    else:
        top = 2 ** (bits - 1)
        clean = np.clip(np.nan_to_num(frames), -1, 1) * (top - 1) + (top if bits == 8 else 0)
        body = clean.astype(dtype).tobytes()
    block = channels * bits // 8
    size = len(body) if declared is None else declared
    fmt_chunk = struct.pack("<HHIIHH", code, channels, rate, (rate * block) & 0xFFFFFFFF, block, bits)
    return (
        b"RIFF" + struct.pack("<I", (36 + size) & 0xFFFFFFFF) + b"WAVE"
        + b"fmt " + struct.pack("<I", 16) + fmt_chunk
        + b"data" + struct.pack("<I", size & 0xFFFFFFFF) + body
    )  # fmt: skip


def check_audio(folder: Path, name: str, features: str, **params: Any) -> Tensor | None:
    proc = AudioProcessor(sample_rate=8000, n_mels=8, features=features, **params)
    proc.base_dir = folder

    def run() -> Tensor:
        proc.fit(pd.Series([name]), "voice")
        return proc.transform(pd.Series([name, ""]), "voice").values

    values = outcome(run, "voice")
    if values is None:
        proc.fit(pd.Series([name]), "voice", on_bad_row="missing")
        enc = proc.transform(pd.Series([name]), "voice", on_bad_row="missing")
        assert enc.bad_rows == [0] and not enc.present[0]
        return None
    assert values.dtype == torch.float32 and values.shape[0] == 2
    assert values.shape[1] == (9 if features == "log_mel" else 2)
    assert torch.isfinite(values).all()
    assert values[1, 0].sum() > 0  # a decoded clip has at least one real frame
    return values


@fuzz(120)
@given(
    rate=st.sampled_from([1, 2, 100, 7999, 8000, 11025, 44100, 96000, 384000, 384001, 2**31 - 1]),
    channels=st.integers(1, 8),
    fmt=st.sampled_from(["pcm8", "pcm16", "float"]),
    samples=st.lists(st.floats(width=32, allow_nan=True, allow_infinity=True), max_size=600),
    declared=st.one_of(st.none(), st.integers(0, 2**32 - 1)),
    cut=st.one_of(st.none(), st.integers(0, 700)),
    features=st.sampled_from(["log_mel", "waveform"]),
)
def test_fuzz_audio_headers(folder, rate, channels, fmt, samples, declared, cut, features):
    data = wav_bytes(rate, channels, fmt, np.asarray(samples, np.float32), declared)
    (folder / "clip.wav").write_bytes(data if cut is None else data[:cut])
    check_audio(folder, "clip.wav", features)


@fuzz(60)
@given(data=st.binary(max_size=2048), magic=st.sampled_from([b"", b"RIFF", b"fLaC", b"OggS", b"ID3"]))
def test_fuzz_audio_random_bytes(folder, data, magic):
    (folder / "noise.wav").write_bytes(magic + data)
    check_audio(folder, "noise.wav", "log_mel")


@pytest.mark.parametrize(
    ("case", "match"),
    [
        ("zero", "0 samples"),
        ("one", None),
        ("one_at_44k", "less than one sample at 8000 Hz"),
        ("eight_channels", None),
        ("nan", "non-finite samples"),
        ("inf", "non-finite samples"),
        ("rate_1hz", None),
        ("rate_huge", "sample rate 2147483647 Hz is outside"),
        ("lying_flac", r"audio too long \(8,589,935 s\); the limit is max_seconds=600"),
        ("too_long", r"audio too long \(3 s\); the limit is max_seconds=2"),
    ],
)
def test_odd_audio_files(tmp_path: Path, case: str, match: str | None):
    path, params = tmp_path / f"{case}.wav", {}
    if case == "zero":
        sf.write(path, np.zeros(0, np.float32), 8000)
    elif case == "one":
        sf.write(path, np.array([0.3], np.float32), 8000)
    elif case == "one_at_44k":
        sf.write(path, np.array([0.3], np.float32), 44100)
    elif case == "eight_channels":
        sf.write(path, np.random.default_rng(0).uniform(-1, 1, (800, 8)).astype(np.float32), 8000)
    elif case in ("nan", "inf"):
        sf.write(path, np.array([0.1, float(case), 0.2], np.float32), 8000, subtype="FLOAT")
    elif case in ("rate_1hz", "rate_huge"):
        path.write_bytes(wav_bytes(1 if case == "rate_1hz" else 2**31 - 1, 1, "pcm16", np.ones(4), None))
    elif case == "lying_flac":  # STREAMINFO declares 2**36 - 1 samples: 256 GiB if trusted
        buf = io.BytesIO()
        sf.write(buf, np.zeros(1000, np.float32), 8000, format="FLAC")
        data = bytearray(buf.getvalue())
        packed = int.from_bytes(data[18:26], "big") | ((1 << 36) - 1)
        data[18:26] = packed.to_bytes(8, "big")
        path.write_bytes(data)
    else:
        sf.write(path, np.zeros(3 * 8000, np.float32), 8000)
        params["max_seconds"] = 2.0
    for features in ("log_mel", "waveform"):
        values = check_audio(tmp_path, path.name, features, **params)
        if match is None:
            assert values is not None
        else:
            assert values is None
            proc = AudioProcessor(sample_rate=8000, **params)
            proc.base_dir = tmp_path
            with pytest.raises(DataError, match=rf"column 'voice', row 1: .*{match}.*{path.name}"):
                proc.fit(pd.Series([path.name]), "voice")


# -- text -------------------------------------------------------------------------

ANY_CHAR = st.characters(codec=None, exclude_categories=())  # surrogates, NUL, RTL, emoji
CELLS = st.one_of(
    st.text(ANY_CHAR, max_size=200),
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.binary(max_size=20),
    st.lists(st.integers(), max_size=3),
    st.sampled_from(["", " ", "nan", "NaN", "inf", "-inf", "1e400", "1,200", "abc", "\u202eevil", "👍🏽"]),
)


@fuzz(150)
@given(cells=st.lists(CELLS, min_size=1, max_size=12), max_length=st.integers(1, 64))
def test_fuzz_text_any_unicode_and_cells(cells, max_length):
    values = pd.Series(cells, dtype=object)
    proc = TextProcessor(max_length=max_length).fit(values, "text")
    enc = proc.transform(values, "text")
    assert enc.values.dtype == torch.int64 and enc.values.shape == (len(cells), proc.max_length_)
    assert proc.max_length_ <= max_length
    assert int(enc.values.min()) >= 0 and int(enc.values.max()) < len(proc.vocab_)
    assert (enc.values[~enc.present] == 0).all()


def test_very_long_text_is_bounded():
    values = pd.Series(["word " * 200_000, "\ud800" * 1000 + "x", "a\x00b"], dtype=object)
    proc = TextProcessor(max_length=16).fit(values, "text")
    assert proc.transform(values, "text").values.shape == (3, 16)


# -- numbers and categories ---------------------------------------------------------

NUMBERISH = st.one_of(
    st.floats(),  # NaN, ±inf, huge and tiny
    st.integers(),  # past int64 and past float range too
    st.booleans(),
    st.none(),
    st.complex_numbers(max_magnitude=10),
    st.sampled_from(["1e400", "-1e400", "inf", "nan", "abc", "1,200", " 3 ", "", "0x10", "1_000"]),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=1),
)


@fuzz(200)
@given(
    cells=st.lists(NUMBERISH, min_size=1, max_size=12),
    scaling=st.sampled_from(["standard", "robust", "quantile"]),
    log=st.booleans(),
    on_bad_row=st.sampled_from(["error", "missing"]),
)
def test_fuzz_numeric_cells(cells, scaling, log, on_bad_row):
    values = pd.Series(cells, dtype=object)
    proc = NumericProcessor(scaling=scaling, log=log)

    def run() -> Any:
        return proc.fit(values, "num", on_bad_row).transform(values, "num", on_bad_row)

    enc = outcome(run, "num")
    if enc is None:
        return
    assert enc.values.dtype == torch.float32 and enc.values.shape == (len(cells), 2)
    assert torch.isfinite(enc.values).all()
    assert set(enc.values[:, 1].tolist()) <= {0.0, 1.0}


def test_number_strings_and_overflow():
    values = pd.Series([1.0, "1e400", 10**400, float("-inf"), 2.0, True], dtype=object)
    enc = NumericProcessor().fit(values, "num").transform(values, "num")
    assert enc.values[:, 1].tolist() == [0, 1, 1, 1, 0, 0]  # ±inf and past-float are missing
    with pytest.raises(DataError, match=r"column 'num', row 2: expected a number, got \[1, 2\]"):
        NumericProcessor().fit(pd.Series([1.0, [1, 2]], dtype=object), "num")
    with pytest.raises(DataError, match=r"column 'num', row 2: log scaling needs non-negative"):
        NumericProcessor(log=True).fit(pd.Series([1.0, -2.0]), "num")
    huge = NumericProcessor().fit(pd.Series([1.0, 2.0]), "num").transform(pd.Series([1e300]), "num")
    assert torch.isfinite(huge.values).all()  # scaled values are clipped, not inf in float32


@fuzz(150)
@given(
    cells=st.lists(st.one_of(CELLS, NUMBERISH), min_size=1, max_size=12), unseen=st.lists(CELLS, max_size=4)
)
def test_fuzz_category_cells(cells, unseen):
    proc = CategoryProcessor().fit(pd.Series(cells, dtype=object), "cat")
    enc = proc.transform(pd.Series(cells + unseen, dtype=object), "cat")
    assert enc.values.dtype == torch.int64 and enc.values.shape == (len(cells) + len(unseen),)
    assert int(enc.values.min()) >= 0 and int(enc.values.max()) <= len(proc.vocab_)


# -- targets ----------------------------------------------------------------------


@fuzz(150)
@given(
    cells=st.lists(st.one_of(CELLS, NUMBERISH), min_size=1, max_size=10),
    kind=st.sampled_from(["category", "binary", "numeric", "multilabel"]),
)
def test_fuzz_targets(cells, kind):
    values = pd.Series(cells, dtype=object)
    proc = {"category": CategoryTarget, "binary": BinaryTarget, "numeric": NumericTarget}.get(
        kind, MultilabelTarget
    )()
    try:
        out = proc.fit(values, "y").transform(values, "y")
    except DataError as err:
        message = str(err)
        assert "\n" not in message and "column 'y'" in message, message
        return
    assert len(out) == len(cells) and torch.isfinite(out).all()
    if kind == "category":
        assert out.dtype == torch.int64 and int(out.max()) < proc.num_classes
    elif kind == "numeric":
        assert out.dtype == torch.float32 and np.isfinite(proc.mean_) and np.isfinite(proc.std_)


def test_nan_and_infinite_labels_are_clear_errors():
    for target in (CategoryTarget(), NumericTarget(), MultilabelTarget()):
        with pytest.raises(DataError, match=r"label column 'y' is empty in 1 of 3 rows \(rows 2\)"):
            target.fit(pd.Series([1.0, float("nan"), 2.0]), "y")
    with pytest.raises(DataError, match=r"label column 'y', row 2: expected a finite number.*got 'inf'"):
        NumericTarget().fit(pd.Series([1.0, "inf", 2.0], dtype=object), "y")
    fitted = NumericTarget().fit(pd.Series([1.0, 2.0]), "y")
    with pytest.raises(DataError, match=r"label column 'y', row 1: expected a finite number.*1e\+300"):
        fitted.transform(pd.Series([1e300]), "y")  # past float32: inf in the loss otherwise
    with pytest.raises(DataError, match=r"label column 'y', row 1: .* not a JSON list"):
        MultilabelTarget().fit(pd.Series(["[" * 100_000, "a|b"]), "y")  # nesting past the stack
    classes = CategoryTarget().fit(pd.Series(["nan", "2", "inf", "10"], dtype=object), "y").classes_
    assert classes == ["2", "10", "inf", "nan"]  # non-finite numbers sort as words
