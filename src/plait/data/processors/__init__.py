"""Processors by column type: inputs and targets."""

from plait.data.processors.audio import AudioProcessor
from plait.data.processors.base import Encoded, InputProcessor, Processor
from plait.data.processors.boxes import BoxesTarget, BoxTarget
from plait.data.processors.image import ImageProcessor
from plait.data.processors.multilabel import MultilabelTarget
from plait.data.processors.pairs import PairTarget
from plait.data.processors.pretrained import FeatureProcessor, HFTextProcessor
from plait.data.processors.sound_track import SoundTrackProcessor
from plait.data.processors.tabular import CategoryProcessor, NumericProcessor, TabularProcessor
from plait.data.processors.targets import (
    BinaryTarget,
    CategoryTarget,
    NumericTarget,
    TargetProcessor,
)
from plait.data.processors.text import TextProcessor
from plait.data.processors.text_target import TextTarget
from plait.data.processors.video import VideoProcessor

INPUT_PROCESSORS: dict[str, type[InputProcessor]] = {
    "image": ImageProcessor,
    "audio": AudioProcessor,
    "video": VideoProcessor,
    "sound_track": SoundTrackProcessor,  # a video column's audio stream
    "text": TextProcessor,
    "numeric": NumericProcessor,
    "category": CategoryProcessor,
    "tabular": TabularProcessor,
    "hf_text": HFTextProcessor,  # chosen by pretrained text encoders
    "features": FeatureProcessor,  # frozen, cached pretrained encoders
}
TARGET_PROCESSORS: dict[str, type[TargetProcessor]] = {
    "category": CategoryTarget,
    "binary": BinaryTarget,
    "numeric": NumericTarget,
    "multilabel": MultilabelTarget,
    "text": TextTarget,
    "retrieval": PairTarget,
    "boxes": BoxesTarget,
    "box": BoxTarget,
}

__all__ = [
    "AudioProcessor",
    "INPUT_PROCESSORS",
    "TARGET_PROCESSORS",
    "BinaryTarget",
    "BoxTarget",
    "BoxesTarget",
    "CategoryProcessor",
    "CategoryTarget",
    "Encoded",
    "ImageProcessor",
    "InputProcessor",
    "MultilabelTarget",
    "NumericProcessor",
    "NumericTarget",
    "PairTarget",
    "Processor",
    "SoundTrackProcessor",
    "TabularProcessor",
    "TargetProcessor",
    "TextProcessor",
    "TextTarget",
    "VideoProcessor",
]
