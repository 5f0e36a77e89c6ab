"""Image processor: decode with Pillow, resize, normalise; opt-in augmentation."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd
import torch
from PIL import Image, ImageOps
from torch import Tensor
from torchvision import tv_tensors
from torchvision.transforms import v2

from plait.data.paths import media_path
from plait.data.processors.base import Encoded, InputProcessor, is_empty, load_distinct
from plait.errors import DataError

_FIT_SAMPLE = 512  # images used to estimate the per-channel mean and std
# Images whose header declares more pixels are refused before decoding: 64 MP holds
# any camera photo and bounds memory (RGB is decoded at 4 bytes a pixel: 256 MB).
MAX_PIXELS = 64_000_000
_HIGH_DEPTH = ("I", "I;16", "I;16L", "I;16B", "I;16N", "F")  # grey modes with more than 8 bits


class _TooLarge(Exception):
    """An image over `max_pixels` (reported as a bad cell)."""


def _to_8bit(img: Image.Image) -> Image.Image:
    """16/32-bit grey → 8-bit L: integers scaled from 0..65535, floats from 0..1 or (when
    outside it) stretched from their own min..max; NaN and ±inf become 0."""
    values = np.asarray(img)
    if img.mode != "F":
        return Image.fromarray((np.clip(values, 0, 65535) // 257).astype(np.uint8))
    values = np.nan_to_num(values.astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    low, high = (float(values.min()), float(values.max())) if values.size else (0.0, 0.0)
    if low >= 0.0 and high <= 1.0:
        low, high = 0.0, 1.0  # the usual range of float images
    scale = 255.0 / (high - low) if high > low else 0.0
    return Image.fromarray(((values - low) * scale).round().astype(np.uint8))


class ImageProcessor(InputProcessor):
    """Paths (relative to the table's folder) → uint8 (3, size, size), normalised per batch.

    Decoding happens once per distinct file when the dataset is built; rows that name
    the same file share one stored image. Augmentation (random crop, horizontal flip,
    rotation) is applied per batch on the training split only.
    """

    kind = "image"

    def __init__(
        self,
        size: int = 64,
        keep_aspect: bool = True,
        grayscale: bool = False,
        random_crop: bool = False,
        horizontal_flip: bool = False,
        rotation: float = 0.0,
        mean: list[float] | None = None,
        std: list[float] | None = None,
        max_pixels: int = MAX_PIXELS,
    ) -> None:
        self.size = size
        self.keep_aspect = keep_aspect
        self.grayscale = grayscale
        self.random_crop = random_crop
        self.horizontal_flip = horizontal_flip
        self.rotation = rotation
        # Fixed normalisation (a pretrained model's); estimated from training images if None.
        self.mean = mean
        self.std = std
        self.max_pixels = max_pixels  # larger images are bad cells (decompression-bomb guard)
        self._augmenter: v2.Compose | None = None

    @property
    def channels(self) -> int:
        return 1 if self.grayscale else 3

    def fit(self, values: pd.Series, column: str = "image", on_bad_row: str = "error") -> ImageProcessor:
        if not isinstance(self.size, int) or self.size < 8:
            raise DataError(f"column {column!r}: image size must be an integer ≥ 8, got {self.size!r}")
        if not isinstance(self.max_pixels, int) or self.max_pixels < 1:
            raise DataError(
                f"column {column!r}: image max_pixels must be a positive integer, got {self.max_pixels!r}"
            )
        if self.mean is not None or self.std is not None:
            if not (isinstance(self.mean, list) and isinstance(self.std, list)) or not (
                len(self.mean) == len(self.std) == self.channels
            ):
                raise DataError(f"column {column!r}: image mean and std need {self.channels} values each")
            self.mean_, self.std_ = [float(v) for v in self.mean], [float(v) for v in self.std]
            return self
        paths = values[[not is_empty(v) for v in values.tolist()]]
        sample = paths.drop_duplicates()
        sample = sample.sample(min(_FIT_SAMPLE, len(sample)), random_state=0) if len(sample) else sample
        pixels = [p for i, v in sample.items() if (p := self._load(v, column, i, on_bad_row)) is not None]
        if pixels:
            stack = torch.from_numpy(np.stack(pixels)).float().div_(255)  # (S, C, H, W)
            self.mean_ = stack.mean(dim=(0, 2, 3)).tolist()
            self.std_ = stack.std(dim=(0, 2, 3)).clamp_min(1e-3).tolist()
        else:
            self.mean_, self.std_ = [0.5] * self.channels, [0.25] * self.channels
        return self

    def _load(self, value: Any, column: str, row: int, on_bad_row: str) -> np.ndarray | None:
        """Decode one cell to uint8 (C, size, size); None when unreadable and skipping."""
        if (path := media_path(value, self.base_dir, column, row, on_bad_row)) is None:
            return None  # outside --data-root, and bad rows are skipped or missing
        try:
            with warnings.catch_warnings():
                # Pillow checks the size (and warns) inside open(); our own limit below
                # replaces that warning. Past 2 × Image.MAX_IMAGE_PIXELS open() raises.
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                with Image.open(path) as img:  # reads the header only
                    if img.width * img.height > self.max_pixels:  # refused before any decoding
                        raise _TooLarge(f"{img.width}×{img.height} = {img.width * img.height:,} pixels")
                    array = self._pixels(img)
        except FileNotFoundError:
            problem = "image file not found"
        except (_TooLarge, Image.DecompressionBombError) as err:
            problem = (
                f"image too large to decode ({err}); the limit is max_pixels={self.max_pixels:,} "
                "(an image preprocessing option)"
            )
        except Exception as err:  # untrusted bytes: any decoder failure is a bad file
            problem = f"not a readable image ({type(err).__name__})"
        else:
            array = array[None] if array.ndim == 2 else array.transpose(2, 0, 1)  # (C, H, W)
            return array if self.perturb is None else self.perturb(array)
        if on_bad_row != "error":
            return None
        raise DataError(f"column {column!r}, row {row + 1}: {problem}: {path}")

    def _pixels(self, img: Image.Image) -> np.ndarray:
        """An opened image of any mode → uint8 (size, size) or (size, size, 3)."""
        img.draft("RGB", (self.size, self.size))  # JPEG: decode at reduced size
        img = ImageOps.exif_transpose(img)
        if img.mode in _HIGH_DEPTH:
            img = _to_8bit(img)  # convert() would clip at 255: 16-bit images turn white
        elif img.mode == "P" and "transparency" in img.info:
            img = img.convert("RGBA")  # Pillow's advice for such palettes (it warns otherwise)
        img = img.convert("L" if self.grayscale else "RGB")  # alpha dropped, as torchvision does
        size = (self.size, self.size)
        img = ImageOps.fit(img, size) if self.keep_aspect else img.resize(size)
        return np.asarray(img, dtype=np.uint8)

    def transform(self, values: pd.Series, column: str, on_bad_row: str = "error") -> Encoded:
        self.check_fitted()
        arrays, index, bad_rows = load_distinct(values, lambda v, row: self._load(v, column, row, on_bad_row))
        placeholder = np.zeros((self.channels, self.size, self.size), dtype=np.uint8)  # slot 0
        return Encoded(torch.from_numpy(np.stack([placeholder, *arrays])), index > 0, index, bad_rows)

    def to_model(self, values: Tensor, training: bool) -> Tensor:
        """uint8 (B, C, H, W) → float (B, C, H, W), augmented when training."""
        if training and (self.random_crop or self.horizontal_flip or self.rotation):
            values = torch.stack([self._augment(v) for v in values])
        mean = torch.tensor(self.mean_).view(1, -1, 1, 1)
        std = torch.tensor(self.std_).view(1, -1, 1, 1)
        return (values.float().div_(255) - mean) / std

    def to_model_with_boxes(self, values: Tensor, boxes: Tensor, training: bool) -> tuple[Tensor, Tensor]:
        """`to_model` for an image column that box targets are drawn on: the boxes
        (B, M, 5) or (B, 4), as fractions of the image, move with the pixels when the
        augmentation flips, crops or turns an image (torchvision.transforms.v2)."""
        if training and (self.random_crop or self.horizontal_flip or self.rotation):
            moved = [move_boxes(self._augment_step(), v, b) for v, b in zip(values, boxes, strict=True)]
            values = torch.stack([m[0] for m in moved])
            boxes = torch.stack([m[1] for m in moved])
        return self.to_model(values, training=False), boxes

    def _augment(self, image: Tensor) -> Tensor:
        return self._augment_step()(image)

    def _augment_step(self) -> v2.Compose:
        if self._augmenter is None:
            steps: list[Any] = []
            if self.random_crop:
                steps.append(v2.RandomResizedCrop(self.size, scale=(0.8, 1.0), antialias=True))
            if self.horizontal_flip:
                steps.append(v2.RandomHorizontalFlip())
            if self.rotation:
                steps.append(v2.RandomRotation(self.rotation))
            self._augmenter = v2.Compose(steps)
        return self._augmenter

    def encoder_kwargs(self) -> dict[str, Any]:
        return {"in_channels": self.channels}


def move_boxes(transform: v2.Transform, image: Tensor, boxes: Tensor) -> tuple[Tensor, Tensor]:
    """One image (C, H, W) and its boxes through `transform`, which sees them as
    tv_tensors (so flips, crops, resizes and rotations move the boxes too).

    boxes: (M, 5) fractions x0, y0, x1, y1 and a class id (-1: padding), or (4,) one box.
    A box cut down to under a pixel is dropped (class -1); a single box that would be
    lost keeps the image unaugmented, as the row needs its box.
    """
    height, width = image.shape[-2:]
    scale = boxes.new_tensor([width, height, width, height])
    single = boxes.dim() == 1
    rows = boxes[None] if single else boxes[boxes[:, 4] >= 0]
    pixels = tv_tensors.BoundingBoxes(rows[:, :4] * scale, format="XYXY", canvas_size=(height, width))
    out = transform({"image": tv_tensors.Image(image), "boxes": pixels})
    new_image, moved = out["image"].as_subclass(Tensor), out["boxes"].as_subclass(Tensor)
    new_h, new_w = new_image.shape[-2:]
    moved = moved.clamp_min(0).minimum(moved.new_tensor([new_w, new_h, new_w, new_h]))
    kept = ((moved[:, 2] - moved[:, 0]) >= 1) & ((moved[:, 3] - moved[:, 1]) >= 1)  # (M,)
    moved = moved / moved.new_tensor([new_w, new_h, new_w, new_h])
    if single:
        return (new_image, moved[0]) if bool(kept[0]) else (image, boxes)
    result = torch.full_like(boxes, -1.0)
    result[:, :4] = 0.0
    n = int(kept.sum())
    result[:n, :4], result[:n, 4] = moved[kept], rows[kept, 4]
    return new_image, result
