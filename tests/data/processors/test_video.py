"""The video processor and the sound-track processor on tiny clips written with PyAV."""

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch

from plait.data.decode_cache import cached_transform
from plait.data.processors import SoundTrackProcessor, VideoProcessor
from plait.data.table import infer_input_type
from plait.errors import DataError
from tests.video_clips import av, moving_square, write_clip


def grey(levels: list[int], size: tuple[int, int] = (32, 32)) -> list[np.ndarray]:
    return [np.full((*size, 3), v, np.uint8) for v in levels]


def fitted(folder: Path, cells: list, **params) -> tuple[VideoProcessor, pd.Series]:
    proc = VideoProcessor(**{"frames": 4, "offsets": 1, "size": 16, **params})
    proc.base_dir = folder
    values = pd.Series(cells)
    return proc.fit(values, "clip"), values


def levels(clip: torch.Tensor) -> list[int]:
    """Mean grey level of each stored frame (uint8 (M, 4, S, S))."""
    return [round(float(f[1:].float().mean())) for f in clip]


def test_shapes_mask_and_sharing(tmp_path: Path):
    write_clip(tmp_path / "a.mp4", moving_square("right"))
    write_clip(tmp_path / "b.mp4", moving_square("down"))
    proc, values = fitted(tmp_path, ["a.mp4", "b.mp4", "a.mp4", "", None], offsets=3)
    enc = proc.transform(values, "clip")
    assert enc.values.dtype == torch.uint8 and enc.values.shape == (3, 12, 4, 16, 16)  # 2 files + placeholder
    assert enc.present.tolist() == [True, True, True, False, False] and enc.bad_rows == []
    assert enc.index.tolist() == [1, 2, 1, 0, 0]
    assert (enc.values[1:, :, 0] == 255).all() and (enc.values[0] == 0).all()
    out = proc.to_model(enc.values, training=False)
    assert out.shape == (3, 4, 4, 16, 16) and out.dtype == torch.float32
    assert out[1:, :, 0].eq(1).all() and out[0].eq(0).all()


def test_a_wrong_extension_still_decodes_and_mp4_columns_are_video(tmp_path: Path):
    write_clip(tmp_path / "clip.avi", moving_square("left"))  # MP4 bytes, an AVI name
    proc, values = fitted(tmp_path, ["clip.avi"])
    assert proc.transform(values, "clip").present.all()
    assert infer_input_type(pd.Series([f"c/{i}.mp4" for i in range(5)]), "clip") == "video"
    assert infer_input_type(pd.Series([f"c/{i}.webm" for i in range(5)]), "clip") == "video"


def test_a_variable_frame_rate_is_sampled_by_time(tmp_path: Path):
    # Five frames shown at 0, 100, 150, 400 and 900 ms: segment centres (of 1,125 ms) at
    # 141, 422, 703 and 984 ms show frames 1, 3, 3 and 4.
    write_clip(tmp_path / "vfr.mp4", grey([0, 50, 100, 150, 200]), pts_ms=[0, 100, 150, 400, 900])
    proc, values = fitted(tmp_path, ["vfr.mp4"])
    clip = proc.transform(values, "clip").values[1]
    assert [abs(a - b) <= 3 for a, b in zip(levels(clip), [50, 150, 150, 200], strict=True)] == [True] * 4


def test_a_clip_shorter_than_k_is_masked(tmp_path: Path):
    write_clip(tmp_path / "short.mp4", grey([30, 120, 210]))
    proc, values = fitted(tmp_path, ["short.mp4"], frames=6, offsets=2)
    clip = proc.transform(values, "clip").values[1]
    assert (clip[:, 0, 0, 0] > 0).tolist() == [True] * 6 + [False] * 6  # 3 segments × 2 candidates
    out = proc.to_model(clip[None], training=True)
    assert out[0, :, 0, 0, 0].tolist() == [1, 1, 1, 0, 0, 0] and out[0, 3:, 1:].abs().sum() == 0


def test_rotation_metadata_is_applied(tmp_path: Path):
    image = np.zeros((32, 64, 3), np.uint8)
    image[:, :32] = 255  # left half white
    write_clip(tmp_path / "rot.mp4", [image] * 3, rotation=90)
    proc, values = fitted(tmp_path, ["rot.mp4"], frames=1)
    frame = proc.transform(values, "clip").values[1, 0, 1].float()  # (16, 16)
    # Turned a quarter counter-clockwise, the left half is at the bottom.
    assert frame[12:].mean() > 200 and frame[:4].mean() < 50


def test_sampling_is_fixed_at_evaluation_and_varies_in_training(tmp_path: Path):
    write_clip(tmp_path / "ramp.mp4", grey(list(range(0, 240, 10))))  # 24 distinct frames
    proc, values = fitted(tmp_path, ["ramp.mp4"], frames=4, offsets=3)
    stored = proc.transform(values, "clip").values[1:].repeat(8, 1, 1, 1, 1)  # (8, 12, 4, S, S)
    evals = [proc.to_model(stored, training=False) for _ in range(3)]
    assert all(torch.equal(evals[0], e) for e in evals)
    assert torch.equal(evals[0][:, :, 0], torch.ones(8, 4, 16, 16))
    torch.manual_seed(0)
    trained = proc.to_model(stored, training=True)
    assert not torch.equal(trained, evals[0])
    assert len({tuple(row[:, 1].mean(dim=(1, 2)).tolist()) for row in trained}) > 1  # rows differ
    # every pick stays inside its own segment: the segments' order is kept
    means = trained[:, :, 1].mean(dim=(2, 3))
    assert (means.diff(dim=1) > 0).all()


def test_bad_files_are_one_line_errors_or_missing_cells(tmp_path: Path):
    write_clip(tmp_path / "ok.mp4", moving_square("up"))
    (tmp_path / "corrupt.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 4)
    sf.write(tmp_path / "sound.mp4", np.zeros(800, np.float32), 8000, format="WAV")  # no video stream
    for name, format_, codec in (("empty.mp4", "mp4", "libx264"), ("empty.avi", "avi", "mpeg4")):
        with av.open(str(tmp_path / name), "w", format=format_) as out:  # a video stream, no frame
            stream = out.add_stream(codec, rate=10)
            stream.width = stream.height = 16
            out.start_encoding()
            out.mux(stream.encode())
    proc, _ = fitted(tmp_path, ["ok.mp4"])
    cells = {  # each cell's own problem (a regular expression)
        "corrupt.mp4": r"not a readable video file \(.+\)",
        "sound.mp4": "the file has no video stream",
        "missing.mp4": "video file not found",
        "empty.mp4": "the file has no video stream",  # MP4 lists no stream that never got a frame
        "empty.avi": "the video stream holds 0 frames",  # AVI keeps the stream: zero frames in it
    }
    for i, (name, problem) in enumerate(cells.items()):
        values = pd.Series(["ok.mp4", name], index=[0, i + 1])
        where = re.escape(str(tmp_path / name))
        with pytest.raises(DataError, match=rf"^column 'clip', row {i + 2}: {problem}: {where}$") as err:
            proc.transform(values, "clip")
        assert "\n" not in str(err.value)
        enc = proc.transform(values, "clip", on_bad_row="missing")
        assert enc.present.tolist() == [True, False] and enc.bad_rows == [1]


def test_guards_refuse_large_frames_and_long_clips(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    with av.open(str(tmp_path / "huge.mp4"), "w") as out:  # 21 MP declared, 226 kB on disk
        stream = out.add_stream("mpeg4", rate=1)
        stream.width, stream.height, stream.pix_fmt = 5120, 4096, "yuv420p"
        frame = av.VideoFrame(5120, 4096, "yuv420p")
        for plane in frame.planes:
            plane.update(bytes(plane.buffer_size))
        out.mux(stream.encode(frame))
        out.mux(stream.encode())
    write_clip(tmp_path / "long.mp4", grey([0] * 12))  # 1.2 s
    proc, _ = fitted(tmp_path, ["long.mp4"], mean=[0.5] * 3, std=[0.2] * 3)  # nothing decoded
    monkeypatch.setattr(VideoProcessor, "_pixels", lambda *a: pytest.fail("decoded a refused clip"))
    with pytest.raises(
        DataError,
        match=r"row 1: video frames too large to decode \(5120×4096 = 20,971,520 pixels\); "
        r"the limit is max_pixels=10,000,000 \(a video preprocessing option\): .*huge.mp4$",
    ):
        proc.transform(pd.Series(["huge.mp4"]), "clip")
    proc.max_seconds = 0.5
    with pytest.raises(DataError, match=r"video too long .* the limit is max_seconds=0.5"):
        proc.transform(pd.Series(["long.mp4"]), "clip")
    assert proc.transform(pd.Series(["long.mp4", "huge.mp4"]), "clip", on_bad_row="missing").bad_rows == [
        0,
        1,
    ]


def test_decoded_clips_go_through_the_decode_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    write_clip(tmp_path / "a.mp4", moving_square("left"))
    proc, values = fitted(tmp_path, ["a.mp4", "a.mp4"])
    first = cached_transform(proc, values, "clip", "error")
    monkeypatch.setattr(VideoProcessor, "_decode", lambda *a: pytest.fail("decoded again"))
    again = cached_transform(proc, values, "clip", "error")
    assert torch.equal(first.values, again.values) and torch.equal(first.index, again.index)


def test_the_sound_track_is_an_audio_input_and_silence_is_missing(tmp_path: Path):
    tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(4000) / 8000)).astype(np.float32)
    write_clip(tmp_path / "loud.mp4", moving_square("left"), sound=tone)
    write_clip(tmp_path / "mute.mp4", moving_square("left"))
    (tmp_path / "bad.mp4").write_bytes(b"not a video")
    frame = pd.DataFrame({"clip": ["loud.mp4", "mute.mp4", None, "bad.mp4"]})
    proc = SoundTrackProcessor(n_mels=16)
    proc.base_dir = tmp_path
    assert proc.select(frame, "clip:audio").equals(frame["clip"]) and proc.source_columns("clip:audio") == [
        "clip"
    ]
    proc.fit(proc.select(frame.iloc[:3], "clip:audio"), "clip:audio")
    assert 0.45 < proc.duration_ < 0.6  # the half second of sound, not the video's length
    enc = proc.transform(frame["clip"], "clip:audio", on_bad_row="missing")
    assert enc.present.tolist() == [True, False, False, False]
    assert enc.bad_rows == [3]  # a mute clip is a missing modality; an unreadable file is bad
    assert enc.values.shape[1] == 17 and enc.take(torch.tensor([0]))[0][0, 0].sum() > 0
    with pytest.raises(DataError, match=r"^column 'clip:audio', row 4: not a readable audio file"):
        proc.transform(frame["clip"], "clip:audio")


def write_plain(path: Path, codec: str, frames: list[np.ndarray]) -> None:
    """Frames at 10 fps in the container `path`'s suffix names (its own time base)."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=10)
        stream.width, stream.height = frames[0].shape[1], frames[0].shape[0]
        stream.pix_fmt = "rgb8" if codec == "gif" else "yuv420p"
        for i, image in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = i
            out.mux(stream.encode(frame))
        out.mux(stream.encode())


@pytest.mark.parametrize(
    ("name", "codec"),
    [
        ("b_frames.avi", "libx264"),
        ("c.mkv", "libx264"),
        ("d.webm", "libvpx"),
        ("e.gif", "gif"),
        ("f.mov", "mpeg4"),
    ],
)
def test_containers_keep_the_frames_in_display_order(tmp_path: Path, name: str, codec: str):
    """AVI labels H.264 B-frames with decoding times: frames are still taken in the
    order they are shown."""
    write_plain(tmp_path / name, codec, moving_square("right", frames=12))
    proc, values = fitted(tmp_path, [name], mean=[0.5] * 3, std=[0.25] * 3)
    clip = proc.transform(values, "clip").values[1]  # (4, 4, 16, 16)
    columns = [int(frame[1].float().mean(0).argmax()) for frame in clip]  # where the square is
    assert columns == sorted(columns) and columns[0] < columns[-1], columns
