"""Media cells of a request → validated files in the request's own temporary folder.

Every image, audio or video cell, whether sent inline (base64, data: URL, multipart upload) or
named by a path under the allowed folder, is read once, decoded to check it (so a bad
file is this caller's 422, never a failure of a micro-batch shared with others), and
written to a private folder that the model then reads. Paths are resolved with
symlinks followed and refused unless they land inside the allowed folder; the bytes
checked are the bytes predicted on, whatever happens to the original file meanwhile.
"""

from __future__ import annotations

import base64
import binascii
import io
import os
import re
import tempfile
import warnings
from pathlib import Path

import numpy as np
import soundfile as sf
from PIL import Image

KINDS = ("image", "audio", "video")


class CellError(Exception):
    """A media cell that cannot be used; the message is the problem, in one line."""


def decode_base64(text: str) -> bytes:
    try:  # whitespace is allowed (MIME wraps base64 at 76 characters)
        return base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        raise CellError("not valid base64") from None


def from_data_url(url: str) -> bytes:
    """`data:image/png;base64,AAAA` → bytes."""
    head, sep, payload = url.partition(",")
    if not sep or not head.endswith(";base64"):
        raise CellError("a data: URL must be base64-encoded (data:<type>;base64,...)")
    return decode_base64(payload)


def check_image(data: bytes) -> str:
    """Decode fully (decompression bombs refused); the file suffix of its format."""
    try:
        with warnings.catch_warnings(), Image.open(io.BytesIO(data)) as img:
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img.draft("RGB", (256, 256))  # JPEG: decode at reduced scale, still every byte
            img.load()
            return f".{(img.format or 'img').lower()}"
    except Exception as err:  # untrusted bytes: any decoder failure is a bad file
        raise CellError(f"not a readable image ({type(err).__name__})") from None


def check_audio(data: bytes) -> str:
    """Decode fully (as the audio processor will); the file suffix of its format."""
    try:
        with sf.SoundFile(io.BytesIO(data)) as file:
            suffix = f".{file.format.lower()}"
            samples = file.read(dtype="float32", always_2d=True)  # (samples, channels)
    except Exception as err:  # untrusted bytes: any decoder failure is a bad file
        detail = " ".join(str(err).split())[:100]
        raise CellError(f"not a readable audio file ({detail or type(err).__name__})") from None
    if samples.shape[0] == 0:
        raise CellError("the audio file holds 0 samples")
    if not np.isfinite(samples).all():
        raise CellError("the audio file holds non-finite samples")
    return suffix


def check_video(data: bytes) -> str:
    """Decode every frame (as the video processor may), after the processor's default
    guards on the declared frame size and length; the file suffix of its format."""
    from plait.data.processors.video import MAX_PIXELS, MAX_SECONDS, av_module  # PyAV: plait[video]

    av = av_module()
    try:
        with av.open(io.BytesIO(data)) as container:
            if not container.streams.video:
                raise CellError("the file has no video stream")
            stream = container.streams.video[0]
            pixels = stream.codec_context.width * stream.codec_context.height
            if pixels > MAX_PIXELS:
                raise CellError(f"video frames of {pixels:,} pixels, over the {MAX_PIXELS:,} limit")
            if container.duration and container.duration / 1e6 > MAX_SECONDS:
                raise CellError(
                    f"a video of {container.duration / 1e6:,.0f} s, over the {MAX_SECONDS:g} s limit"
                )
            frames = sum(1 for _ in container.decode(stream))
            suffix = "." + container.format.name.split(",")[0]
    except CellError:
        raise
    except Exception as err:  # untrusted bytes: any decoder failure is a bad file
        detail = " ".join(str(err).split())[:100]
        raise CellError(f"not a readable video file ({detail or type(err).__name__})") from None
    if frames == 0:
        raise CellError("the video stream holds 0 frames")
    return suffix


_CHECKS = {"image": check_image, "audio": check_audio, "video": check_video}


class MediaFiles:
    """The media of one request, checked and written to a private temporary folder
    (created on first use; `close()` removes it)."""

    def __init__(self, allow_dir: Path | None, max_bytes: int) -> None:
        self.allow_dir = allow_dir  # resolved (ServeOptions.checked)
        self.max_bytes = max_bytes
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._count = 0

    def add(self, data: bytes, kind: str) -> str:
        """Check `data` as an image, audio or video file and store it; its absolute path."""
        if len(data) > self.max_bytes:
            raise CellError(
                f"the file is {_mb(len(data))}, over the {_mb(self.max_bytes)} limit (--max-upload-mb)"
            )
        if not data:
            raise CellError(f"the {kind} file is empty")
        suffix = _CHECKS[kind](data)
        if self._tmp is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="plait-serve-")
        self._count += 1
        path = Path(self._tmp.name) / f"{self._count}{suffix}"
        path.write_bytes(data)
        return str(path)

    def read_path(self, value: str) -> bytes:
        """The bytes of a file named relative to the allowed folder (or absolute inside it)."""
        if self.allow_dir is None:
            raise CellError(
                "file paths are refused: the server was started without --allow-dir; send the file "
                'inline ({"base64": ...}) or as a multipart upload, or restart it with --allow-dir FOLDER'
            )
        try:
            target = (self.allow_dir / value).resolve()  # an absolute `value` replaces allow_dir
            inside = target.is_relative_to(self.allow_dir)
            size = target.stat().st_size if inside and target.is_file() else None
        except (OSError, ValueError, RuntimeError) as err:  # NUL, name too long, symlink loop
            raise CellError(f"cannot use path {value!r} ({type(err).__name__})") from None
        if not inside:
            raise CellError(f"path {value!r} is outside the allowed folder; give a path inside it")
        if size is None:
            raise CellError(f"no file {value!r} in the allowed folder")
        if size > self.max_bytes:
            raise CellError(f"file {value!r} is {_mb(size)}, over the {_mb(self.max_bytes)} limit")
        try:
            return target.read_bytes()
        except OSError as err:
            raise CellError(f"cannot read {value!r} ({type(err).__name__})") from None

    def hide(self, text: str) -> str:
        """`text` (an error from the model) without the paths of this request's files:
        they are the server's own, of no use to a caller."""
        if self._tmp is None:
            return text
        return re.sub(rf":? ?{re.escape(self._tmp.name + os.sep)}\S*", "", text)

    def close(self) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None


def _mb(size: int) -> str:
    return f"{size / 1024 / 1024:.3g} MB"
