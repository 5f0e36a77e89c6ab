"""The config: pydantic models for YAML files and Python dicts (the only config parser).

A config names columns, their types, the encoder/fusion/head to build and trainer
settings. Anything left out is inferred from the data or taken from the defaults
below; the fully resolved config is saved in every run folder.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from plait.errors import ConfigError

InputType = Literal["image", "audio", "text", "numeric", "category", "video"]
TargetType = Literal["category", "binary", "numeric", "multilabel", "text", "retrieval", "boxes", "box"]
# Types a column may be given with `--type COL=TYPE`; `ignore` keeps a column out of
# the model (ids are carried through to predictions), `split` marks train/val/test.
COLUMN_TYPES: tuple[str, ...] = (
    "image",
    "audio",
    "video",
    "text",
    "numeric",
    "category",
    "binary",
    "multilabel",
    "boxes",
    "box",
    "ignore",
    "split",
)

DEFAULT_ENCODERS: dict[str, str] = {
    "image": "cnn",
    # 1-D over time (mel bands as channels): on FSDD as accurate as the 2-D audio_cnn or
    # more, at about a quarter of its time per epoch (docs/benchmarks.md, "Default audio encoder").
    "audio": "audio_cnn1d",
    # A frame CNN shared across the sampled frames, then a temporal 1-D convolution:
    # on talking digits the mean of frames cannot tell the motion's direction and this
    # can (docs/benchmarks.md, "Video columns").
    "video": "video_cnn",
    "text": "gru",
    "numeric": "mlp",
    "category": "embedding",
    "tabular": "tabular_mlp",  # a group of numeric and category columns
}
MEDIA_TYPES = ("image", "audio", "text", "video")
TABULAR_TYPES = ("numeric", "category")
DEFAULT_HEADS: dict[str, str] = {
    "category": "classification",
    "binary": "binary",
    "numeric": "regression",
    "multilabel": "multilabel",
    "text": "decoder",
    "retrieval": "contrastive",
    "boxes": "detection",
    "box": "grounding",
}
BOX_TYPES = ("boxes", "box")  # targets drawn on an image column (plait.data.processors.boxes)


# Passed to Lightning's Trainer (ddp_spawn: DDP without re-running the script).
STRATEGIES = ("auto", "ddp", "ddp_spawn", "fsdp")
PRECISIONS = ("32-true", "bf16-mixed", "16-mixed", "bf16-true", "16-true", "64-true")
# Lightning's older short names, still accepted in configs.
_PRECISION_ALIASES = {"32": "32-true", "16": "16-mixed", "bf16": "bf16-mixed", "64": "64-true"}
# Seeds reach numpy, torch and Lightning, which take 0 .. 2**32 - 1.
Seed = Annotated[int, Field(ge=0, le=2**32 - 1)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ComponentSpec(_Strict):
    """A registered component and its parameters: `gru` or `{name: gru, hidden_dim: 128}`."""

    name: str
    params: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _from_shorthand(cls, value: Any) -> Any:
        if isinstance(value, str):
            return {"name": value}
        if isinstance(value, dict) and "params" not in value:
            # `{name: gru, hidden_dim: 128}`: everything but the name is a parameter.
            rest = {k: v for k, v in value.items() if k != "name"}
            return {"name": value.get("name"), "params": rest}
        return value


class InputConfig(_Strict):
    name: str
    type: InputType | None = None  # inferred from the data when omitted
    encoder: ComponentSpec | None = None  # default per type (DEFAULT_ENCODERS)
    preprocessing: dict[str, Any] = Field(default_factory=dict)
    # Columns with the same group share one encoder and one fitted preprocessing
    # (weights tied). Default: one group per media type when `share_encoders`, and
    # one "tabular" group for all numeric and category columns.
    group: str | None = None
    # Video columns only: also read the clip's sound track, as the audio input
    # `NAME:audio` (its own encoder and presence mask; a clip without sound is a missing
    # modality there). A mapping gives that input's audio preprocessing options.
    audio: bool | dict[str, Any] = False
    # Set by plait for the `NAME:audio` input itself: the video column it reads.
    sound_of: str | None = None


class OutputConfig(_Strict):
    name: str
    type: TargetType | None = None
    head: ComponentSpec | None = None
    loss_weight: float = Field(1.0, gt=0)
    # Retrieval only: the tower columns (image, text, audio) embedded into one space;
    # `name` is then the task's name, not a column.
    columns: list[str] = Field(default_factory=list)
    # Options of the target's processor, e.g. `{delimiter: ";"}` for a multilabel target.
    preprocessing: dict[str, Any] = Field(default_factory=dict)
    # Binary only: the positive class's probability a row needs to be predicted that class.
    # "auto": tuned after training to maximise the run's `metric:` on held-out predictions.
    threshold: Annotated[float, Field(gt=0, lt=1)] | Auto = "auto"


Candidate = Literal["neural", "lightgbm", "linear", "neural_attention"]  # plait.ensemble
Modality = Literal["image", "audio", "text", "numeric", "category", "tabular", "video"]
Auto = Literal["auto"]  # set from the data by plait.recipe; config.yaml records the number


def parse_duration(value: Any) -> float | None:
    """Seconds from 600, "600", "90s", "10m", "1h30m" or "1.5h"; None stays None. A
    ValueError (one line) for anything else, or for a duration that is not positive."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError(f"expected a duration such as 10m, 90s or 1h30m, got {value!r}")
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        text = str(value).strip().lower().replace(" ", "")
        parts = re.fullmatch(r"(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s?)?", text)
        if not text or parts is None:
            raise ValueError(f"expected a duration such as 10m, 90s or 1h30m, got {value!r}")
        hours, minutes, secs = (float(g) if g else 0.0 for g in parts.groups())
        seconds = 3600 * hours + 60 * minutes + secs
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"a time limit must be a positive duration, got {value!r}")
    return seconds


class TrainerConfig(_Strict):
    # "auto" (plait.recipe): sized to the data, counted in optimiser steps; early
    # stopping ends the run once validation stops improving.
    epochs: Annotated[int, Field(ge=1)] | Auto = "auto"
    batch_size: int = Field(64, ge=1)
    eval_batch_size: int = Field(512, ge=1)
    learning_rate: float = Field(2e-3, gt=0)
    weight_decay: float = Field(1e-4, ge=0)
    # "onecycle" warms up then anneals over `epochs`; "cosine" anneals over `epochs`;
    # "plateau" warms up, then halves the rate when val_loss stalls (plait.system);
    # "constant" keeps the rate fixed; "auto": plateau when `epochs` is auto (the run's
    # length is unknown), else onecycle.
    scheduler: Literal["onecycle", "cosine", "plateau", "constant"] | Auto = "auto"
    # Epochs without a val_loss improvement of at least `min_delta` before stopping.
    patience: Annotated[int, Field(ge=1)] | Auto = "auto"
    min_delta: float = Field(1e-3, ge=0)
    val_fraction: Annotated[float, Field(gt=0, lt=1)] | Auto = "auto"
    # Wall-clock budget of the whole command (reading, feature caching, training,
    # evaluation): seconds, or "10m", "1h30m". Training stops in time and keeps the
    # best checkpoint. None: no limit (early stopping still ends the run).
    time_limit: float | None = None
    accelerator: str = "auto"
    devices: int | str = 1  # per node: a count, "auto", or GPU ids as Lightning takes them
    num_nodes: int = Field(1, ge=1)
    # "auto": one device trains as before, several use DDP. fsdp needs GPUs.
    strategy: str = "auto"
    precision: str = "32-true"
    # DataLoader worker processes; "auto" = data.datamodule.default_workers: 0 for the
    # in-memory tables (a batch is one vectorised gather, cheaper in the main process
    # than shipping it from a worker; see docs/benchmarks.md), more for streamed data.
    num_workers: Annotated[int, Field(ge=0)] | Literal["auto"] = "auto"
    gradient_clip: float | None = 1.0
    # A table given as a folder of Parquet shards is streamed: column types and input
    # processors come from this many sampled rows, and batches are drawn at random from
    # a buffer of this many decoded rows per loader worker.
    # Training writes a resumable checkpoint (plait.resume) every this many steps and
    # after each epoch.
    checkpoint_every_n_steps: int = Field(200, ge=1)
    stream_sample_rows: int = Field(10_000, ge=100)
    stream_buffer_rows: int = Field(4096, ge=1)
    # Training only: hide an input (through its presence mask, as if missing) with this
    # probability per row, so the model cannot lean on one modality alone. One rate for
    # every input, or a rate per input ({column or tabular group: rate}). A row always
    # keeps at least one input.
    modality_dropout: float | dict[str, float] = 0.0
    progress: bool = True
    # Convert the model and image batches to channels-last memory format (faster
    # convolutions on recent GPUs and CPUs; the built-in CNN already runs its
    # convolutions channels-last, so this matters mostly for timm backbones).
    channels_last: bool = False
    # torch.compile the model's encoders and fusion for training (a one-off compile
    # of tens of seconds; needs a C++ compiler on CPU, Triton on GPU).
    compile: bool = False

    @field_validator("strategy")
    @classmethod
    def _known_strategy(cls, value: str) -> str:
        if value not in STRATEGIES:
            raise ValueError(f"strategy must be one of {', '.join(STRATEGIES)}; got {value!r}")
        return value

    @field_validator("devices")
    @classmethod
    def _device_count(cls, value: int | str) -> int | str:
        if isinstance(value, int) and value < 1 and value != -1:
            raise ValueError(f"devices must be a count ≥ 1, -1 (all), 'auto' or GPU ids; got {value}")
        return value

    @field_validator("time_limit", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> float | None:
        return parse_duration(value)

    @field_validator("precision")
    @classmethod
    def _known_precision(cls, value: str) -> str:
        value = _PRECISION_ALIASES.get(value, value)
        if value not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}; got {value!r}")
        return value


class LightGBMConfig(_Strict):
    """The lightgbm candidate's settings (plait.ensemble.members); "auto" sizes them to the
    flat table. Early stopping on the validation rows chooses the number of trees."""

    learning_rate: float = Field(0.05, gt=0, le=1)
    num_leaves: int = Field(31, ge=2, le=4096)
    # "auto": a leaf needs a few rows on a small table (rows / 100, between 3 and 20).
    min_data_in_leaf: Annotated[int, Field(ge=1)] | Auto = "auto"
    # "auto": 0.9, or 0.5 on a table of more than 100 columns (wide embeddings).
    feature_fraction: Annotated[float, Field(gt=0, le=1)] | Auto = "auto"
    lambda_l2: float = Field(1.0, ge=0)
    # Optuna (TPE) trials over the four settings above, each a fit scored by its validation
    # loss, before the member is bagged (plait.ensemble.lightgbm_search); 0: none.
    # `plait tune` sets it for its final run.
    search_trials: int = Field(0, ge=0)


class PlaitConfig(_Strict):
    inputs: list[InputConfig] = Field(default_factory=list)
    outputs: list[OutputConfig] = Field(default_factory=list)
    fusion: ComponentSpec = Field(default_factory=lambda: ComponentSpec(name="concat"))
    trainer: TrainerConfig = Field(default_factory=TrainerConfig)
    seed: Seed = 0
    # Which encoders columns get when they name none (plait.presets): fast (from
    # scratch), medium (shipped pretrained image and text encoders, frozen and cached),
    # best (medium, trained longer).
    preset: Literal["fast", "medium", "best"] = "medium"
    # Learners trained and weighted into one ensemble (plait.ensemble): the network
    # ("neural"), LightGBM and a linear probe on the numeric and category columns and
    # frozen pretrained features, and the network again with the attention fusion
    # ("neural_attention"). "auto": the preset's (plait.presets.default_candidates).
    # The network is trained in any case (it serves text and retrieval targets).
    candidates: list[Candidate] | Literal["auto"] = "auto"
    lightgbm: LightGBMConfig = Field(default_factory=LightGBMConfig)
    # What binary targets are decided for (plait.evaluation.thresholds): the decision
    # threshold is tuned to maximise it on honest held-out predictions (the ensemble's
    # out-of-fold ones where it has them, else the validation split's). "auto": accuracy.
    metric: Literal["auto", "accuracy", "macro_f1", "f1", "balanced_accuracy"] = "auto"
    # A default encoder per modality (image, audio, text, numeric, category, tabular),
    # over the preset's: `encoders: {text: minilm}` changes the text columns only.
    encoders: dict[Modality, ComponentSpec] = Field(default_factory=dict)
    # Several image (audio, text) columns share one encoder; False gives each its own.
    share_encoders: bool = True
    # "group": numeric and category columns form one tabular input; "per_column":
    # each gets its own encoder (mlp / embedding).
    tabular: Literal["group", "per_column"] = "group"
    # An absent input is masked out ("mask": every fusion ignores it) or replaced by a
    # learned per-input "missing" embedding ("learned").
    missing_modality: Literal["mask", "learned"] = "mask"
    # Columns carried through to predictions (ids), never fed to the model.
    id_columns: list[str] = Field(default_factory=list)
    split_column: str | None = None
    # A cell that cannot be used (unreadable media file, text in a number column):
    # stop with an error naming it, treat the cell as missing, or skip the whole row
    # when training and evaluating (prediction keeps every row, as "missing").
    # Skipped rows and missing cells are counted and reported.
    on_bad_row: Literal["error", "missing", "skip"] = "error"
    # Keep decoded images, spectrograms and token ids on disk (data/decode_cache.py,
    # under $PLAIT_CACHE_DIR/decoded) so later runs, folds and evaluations of the same
    # table skip decoding; False (`plait train --no-cache`) always decodes afresh.
    cache: bool = True

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)


# The config once resolved against a table (plait.data.schema.resolve_config) or read
# from a run folder: every choice the user left open is made, so nothing downstream
# (prepare, build, the report, a loaded run) picks a default again.
class ResolvedInput(InputConfig):
    type: InputType
    encoder: ComponentSpec
    group: str


class ResolvedOutput(OutputConfig):
    type: TargetType
    head: ComponentSpec


class ResolvedConfig(PlaitConfig):
    # Narrowed from PlaitConfig's lists (pydantic validates the subclass's own types).
    inputs: list[ResolvedInput]
    outputs: list[ResolvedOutput]
    candidates: list[Candidate]


def is_tabular_group(key: str, members: list[ResolvedInput]) -> bool:
    """True when input `key` is several numeric/category columns encoded together."""
    return members[0].type in TABULAR_TYPES and (len(members) > 1 or members[0].name != key)


def input_units(config: ResolvedConfig) -> dict[str, list[ResolvedInput]]:
    """The model's inputs: key → its columns. A media column is its own input (sharing
    its group's encoder); a tabular group of several columns is one input named after
    the group."""
    units: dict[str, list[ResolvedInput]] = {}
    for col in config.inputs:
        members = [c for c in config.inputs if c.group == col.group]
        key = col.group if is_tabular_group(col.group, members) else col.name
        units.setdefault(key, []).append(col)
    return units


C = TypeVar("C", bound=PlaitConfig)  # a PlaitConfig or a ResolvedConfig

# Pydantic names each member of a union in an error's location ("constrained-int",
# "literal['auto']"); the user wrote none of them.
_UNION_MEMBER = re.compile(r"[\[\-]|^(int|float|str|bool|none)$")


def _one_line(err: ValidationError) -> str:
    """Every error as `where: message, got value`, once per field: a value that fits no
    member of `int | "auto"` says why the number is wrong, not that it is not "auto"."""
    parts: dict[str, str] = {}
    for e in err.errors():
        loc = [str(p) for p in e["loc"]]
        where = ".".join(p for p in loc if not _UNION_MEMBER.search(p)) or "(top level)"
        if where in parts and any(p.startswith("literal[") for p in loc):
            continue  # the other member's message is the useful one
        message = str(e["msg"]).removeprefix("Value error, ")  # a validator's own words
        line = f"{where}: {message}{_received(message, e.get('input'))}"
        if where not in parts or parts[where].split(": ", 1)[1].startswith("Input should be '"):
            parts[where] = line
    return "; ".join(parts.values())


def _received(message: str, value: Any) -> str:
    """`, got -1` for a plain value the user gave, unless the message names it already;
    nothing for a mapping or a list."""
    if isinstance(value, (bool, int, float, str)) and "got " not in message:
        return f", got {value!r}"
    return ""


def parse_config(data: dict[str, Any] | PlaitConfig | None, source: str = "config") -> PlaitConfig:
    if data is None:
        return PlaitConfig()
    if isinstance(data, PlaitConfig):
        return data.model_copy(deep=True)
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping at the top level, got {type(data).__name__}")
    try:
        return PlaitConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError(f"{source}: {_one_line(err)}") from None


def load_config(path: str | Path) -> PlaitConfig:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML ({' '.join(str(err).split())})") from None
    return parse_config(data or {}, source=str(path))


def as_config(config: str | Path | dict[str, Any] | PlaitConfig | None) -> PlaitConfig:
    """A config file, a mapping or a PlaitConfig (None: the defaults), validated."""
    return load_config(config) if isinstance(config, (str, Path)) else parse_config(config)


def apply_overrides(cfg: C, source: str = "command line", **flags: Any) -> C:
    """`cfg` with every flag that is not None applied and validated as in a config file:
    the one way every command (train, cv, benchmark, the demo, loading a run) changes a
    config. Trainer settings (epochs, time_limit, devices, ...) go under `trainer:`, the
    others (seed, preset, on_bad_row, cache, fusion: a name or a spec) at the top level;
    an invalid one is a one-line ConfigError naming `source`. A ResolvedConfig stays one."""
    given = {k: v for k, v in flags.items() if v is not None}
    trainer_keys = set(TrainerConfig.model_fields)
    unknown = sorted(set(given) - trainer_keys - set(PlaitConfig.model_fields))
    if unknown:  # a caller's mistake, not the user's
        raise TypeError(f"apply_overrides: unknown setting(s) {', '.join(unknown)}")
    if not given:
        return cfg
    trainer = {k: v for k, v in given.items() if k in trainer_keys}
    top = {k: v for k, v in given.items() if k not in trainer_keys}
    try:
        # The trainer alone first, so that its errors read `epochs: ...` as in `trainer:`.
        if trainer:
            top["trainer"] = TrainerConfig.model_validate({**cfg.trainer.model_dump(), **trainer})
        return type(cfg).model_validate({**cfg.model_dump(), **top})
    except ValidationError as err:
        raise ConfigError(f"{source}: {_one_line(err)}") from None


def check_seed(seed: int, name: str = "command line: seed") -> int:
    """`seed` if it is one the config would take; else a one-line ConfigError naming `name`."""
    try:
        return TypeAdapter(Seed).validate_python(seed)
    except ValidationError as err:
        raise ConfigError(f"{name}: {_one_line(err).removeprefix('(top level): ')}") from None
