"""Resolve a config against a table: which column is which modality, which are targets.

Types are inferred from the data (table.py) and overridden, in increasing priority,
by the config file and by `--type COL=TYPE`. The result is a config in which every
input and output has a type, saved with the run.
"""

from __future__ import annotations

import difflib
import warnings
from collections.abc import Iterable

import pandas as pd

from plait.config import (
    BOX_TYPES,
    COLUMN_TYPES,
    DEFAULT_ENCODERS,
    DEFAULT_HEADS,
    MEDIA_TYPES,
    TABULAR_TYPES,
    ComponentSpec,
    InputConfig,
    OutputConfig,
    PlaitConfig,
    ResolvedConfig,
    ResolvedInput,
)
from plait.data.processors.sound_track import sound_track_key
from plait.data.table import infer_types, inference_doubt, is_blank, label_problem
from plait.errors import ConfigError, DataError, PlaitWarning
from plait.presets import (
    PRETRAINED_NAMES,
    default_candidates,
    default_encoders,
    effective_preset,
    needs_own_encoder,
)

INPUT_TYPES = ("image", "audio", "video", "text", "numeric", "category")
TARGET_TYPES = ("category", "binary", "numeric", "multilabel", "text", "boxes", "box")


def check_columns(frame: pd.DataFrame, names: Iterable[str], what: str, needed: bool = False) -> None:
    """Every name is a column of `frame`. `needed`: the names are what a trained model
    reads (predict, evaluate), so a table lacking one is told so; otherwise the user
    named them (--label, a config) and the name is unknown."""
    columns = list(frame.columns)
    for name in names:
        if name not in columns:
            close = difflib.get_close_matches(name, columns, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            article = "an" if what[0] in "aeiou" else "a"
            problem = (
                f"the table lacks column {name!r}, which the model needs as {article} {what}"
                if needed
                else f"unknown {what} column {name!r}"
            )
            raise DataError(f"{problem}.{hint} Columns: {', '.join(columns)}")


def parse_type_overrides(pairs: Iterable[str]) -> dict[str, str]:
    """`["age=numeric", ...]` → {"age": "numeric"}."""
    overrides: dict[str, str] = {}
    for pair in pairs:
        name, sep, type_ = pair.rpartition("=")
        if not sep or not name:
            raise ConfigError(f"--type expects COLUMN=TYPE, got {pair!r}")
        if type_ not in COLUMN_TYPES:
            raise ConfigError(f"--type {pair}: unknown type {type_!r}; valid: {', '.join(COLUMN_TYPES)}")
        overrides[name] = type_
    return overrides


def resolve_config(
    frame: pd.DataFrame,
    config: PlaitConfig,
    labels: list[str] | None = None,
    types: dict[str, str] | None = None,
) -> ResolvedConfig:
    """`config` with every choice made for `frame`: each column's type, role, group and
    encoder, each target's type and head, the preset that applies, the split and id
    columns. Downstream code reads these and never picks a default again."""
    config = config.model_copy(deep=True)
    types = dict(types or {})
    retrieval = [o for o in config.outputs if o.type == "retrieval" or o.columns]
    configured = {o.name: o for o in config.outputs if o not in retrieval}
    labels = list(dict.fromkeys([*(labels or []), *configured]))
    if not labels and not retrieval:
        raise ConfigError(
            "no label column given: pass --label COLUMN or --retrieval COL_A,COL_B "
            "(or outputs: in the config)"
        )
    check_columns(frame, labels, "label")
    check_columns(frame, types, "--type")
    config.inputs = [i for i in config.inputs if i.sound_of is None]  # re-derived below
    check_columns(frame, [i.name for i in config.inputs], "input")
    check_columns(frame, config.id_columns, "id")

    inferred = infer_types(frame, labels)
    outputs = []
    for name in labels:
        out = configured.get(name) or OutputConfig(name=name)
        type_ = types.get(name) or out.type or inferred[name]
        if type_ not in TARGET_TYPES:
            raise ConfigError(f"label {name!r} cannot have type {type_!r}; valid: {', '.join(TARGET_TYPES)}")
        problem = None if name in types or out.type else label_problem(frame[name], name, type_)
        if problem:  # an inferred class label that no classifier could learn
            raise DataError(problem)
        if out.threshold != "auto" and type_ != "binary":
            raise ConfigError(f"output {name!r}: threshold: is for binary targets, and this one is {type_}")
        outputs.append(out.model_copy(update={"type": type_}))
    config.outputs = outputs + [_check_retrieval(o, frame, labels) for o in retrieval]

    final = {name: types.get(name, inferred[name]) for name in frame.columns}
    roles = kept_out(config)
    if config.inputs:  # an explicit list of inputs: exactly those columns
        inputs = []
        for col in config.inputs:
            if col.name in roles:
                raise ConfigError(f"column {col.name!r} is {roles[col.name]}, so it cannot be an input too")
            type_ = types.get(col.name) or col.type or inferred[col.name]
            inputs.append(col.model_copy(update={"type": _input_type(col.name, type_)}))
            final[col.name] = inputs[-1].type
    elif retrieval and not labels:  # retrieval alone: the towers are the inputs
        towers = {c for o in retrieval for c in o.columns}
        inputs = [InputConfig(name=n, type=_input_type(n, t)) for n, t in final.items() if n in towers]
    else:
        inputs = [
            InputConfig(name=name, type=_input_type(name, type_))
            for name, type_ in final.items()
            if name not in labels and name not in roles and type_ in (*INPUT_TYPES, "binary")
        ]
    inputs = with_sound_tracks(inputs)
    _check_towers(retrieval, inputs)
    config.outputs = [_box_image(o, inputs) if o.type in BOX_TYPES else o for o in config.outputs]
    if not inputs:
        raise DataError(f"no input columns left besides the label(s) {', '.join(labels)}")
    declared = set(types) | {c.name for c in config.inputs if c.type}
    doubtful = [i.name for i in inputs if i.sound_of is None]
    if not config.inputs and labels:  # inputs inferred: the columns left out were guesses too
        doubtful += [n for n, t in final.items() if t == "ignore" and n not in labels]
    for name in doubtful:
        doubt = None if name in declared else inference_doubt(frame[name], name, final[name])
        if doubt:
            warnings.warn(doubt, PlaitWarning, stacklevel=2)
    preset, note = effective_preset(config.preset)
    if note:
        warnings.warn(note, PlaitWarning, stacklevel=2)
    config.preset = preset  # the one that applies here
    if config.candidates == "auto":
        config.candidates = default_candidates(preset, [i.type for i in inputs])
    used = {i.name for i in inputs} | set(labels)
    if config.split_column is None:
        config.split_column = next((n for n, t in final.items() if t == "split" and n not in used), None)
    ids = [n for n, t in final.items() if t == "ignore" and n not in used and not is_blank(frame[n])]
    config.id_columns = list(dict.fromkeys([*config.id_columns, *ids]))
    config.inputs = inputs
    return resolved(config, default_encoders(preset, config.encoders), set(frame.columns))


def resolved(
    config: PlaitConfig,
    encoders: dict[str, ComponentSpec] | None = None,
    columns: set[str] | None = None,
) -> ResolvedConfig:
    """`config`, whose columns and targets all have their types, with every group,
    encoder and head chosen: the one place defaults are picked. Encoders come from
    `encoders` (a preset's, plait.presets) or, for a run folder written before the
    saved config named them, DEFAULT_ENCODERS, which is what such a run built.
    Every component is checked here, once: unknown names, parameters, types."""
    inputs = assign_groups(config.inputs, config.share_encoders, config.tabular, columns or set(), encoders)
    drawn_on = {o.preprocessing.get("image") for o in config.outputs if o.type in BOX_TYPES}
    inputs = [_spatial(i) if i.name in drawn_on else i for i in inputs]
    outputs = []
    for out in config.outputs:
        if out.type is None:
            raise ConfigError(f"output {out.name!r} has no type")
        head = out.head or ComponentSpec(name=DEFAULT_HEADS[out.type])
        outputs.append({**out.model_dump(), "head": head.model_dump()})
    if config.candidates == "auto":  # a run folder from before candidates: the network alone
        config = config.model_copy(update={"candidates": ["neural"]})
    inputs_data = [i.model_dump() for i in inputs]
    done = ResolvedConfig.model_validate({**config.model_dump(), "inputs": inputs_data, "outputs": outputs})
    # Imported here: plait.runtime (ONNX, no training code) reads tables through this module.
    from plait.build import validate_components

    validate_components(done)
    return done


def _box_image(out: OutputConfig, inputs: list[InputConfig]) -> OutputConfig:
    """A box target with the image column it is drawn on: the one it names, else the
    table's only image input. That column is resized without cropping (keep_aspect
    false), so a box's fractions of the image stay where they were."""
    images = [i for i in inputs if i.type == "image"]
    name = out.preprocessing.get("image")
    if name is None:
        if len(images) != 1:
            found = ", ".join(i.name for i in images) or "none"
            raise ConfigError(
                f"{out.type} target {out.name!r} needs the image column its boxes are drawn on; the "
                f"inputs hold {found}: set preprocessing: {{image: COLUMN}} on the output"
            )
        name = images[0].name
    column = next((i for i in images if i.name == name), None)
    if column is None:
        raise ConfigError(f"{out.type} target {out.name!r}: {name!r} is not an image input of the model")
    if column.preprocessing.get("keep_aspect", False):
        raise ConfigError(
            f"image column {name!r} carries boxes, so it is resized whole; keep_aspect: true would crop "
            "them away: leave it out"
        )
    column.preprocessing["keep_aspect"] = False
    texts = [i.name for i in inputs if i.type == "text"]
    if column.preprocessing.get("horizontal_flip") and texts:
        warnings.warn(
            f"{out.type} target {out.name!r}: horizontal_flip mirrors image {name!r} and its boxes but "
            f"not the words of {', '.join(texts)}, so a phrase such as 'the 2nd from the left' then "
            "points at another object; leave horizontal_flip out if the text names sides",
            PlaitWarning,
            stacklevel=3,
        )
    return out.model_copy(update={"preprocessing": {**out.preprocessing, "image": name}})


def _spatial(column: ResolvedInput) -> ResolvedInput:
    """An image column that box targets are drawn on needs its encoder's feature maps,
    which cached pretrained features (one vector per image) do not keep: such an encoder
    runs its backbone on every batch (cache: false), frozen unless `finetune` says more."""
    from plait.encoders import ENCODERS  # imported here, as build is in resolved()
    from plait.encoders.pretrained.encoder import uses_cache

    spec = column.encoder
    if "cache" not in ENCODERS.params(spec.name):
        return column
    if "cache" in spec.params:
        params = spec.params
        if uses_cache(params.get("finetune", "frozen"), params["cache"], params.get("lora")):
            raise ConfigError(
                f"image column {column.name!r} carries boxes, whose head reads its encoder's feature "
                "maps; cache: true keeps one vector per image: leave cache out or set cache: false"
            )
        return column
    encoder = spec.model_copy(update={"params": {**spec.params, "cache": False}})
    return column.model_copy(update={"encoder": encoder})


def kept_out(config: PlaitConfig) -> dict[str, str]:
    """Columns the config gives another role, which the model must never read: the
    split column (its values differ between training and use; cross-validation's fold
    column is one) and the id columns. Column → its role, for messages."""
    roles = {name: "an id column" for name in config.id_columns}
    if config.split_column is not None:
        roles[config.split_column] = "the split column"
    return roles


def _check_retrieval(out: OutputConfig, frame: pd.DataFrame, labels: list[str]) -> OutputConfig:
    if out.type not in (None, "retrieval"):
        raise ConfigError(f"output {out.name!r}: columns: is for retrieval outputs, not {out.type}")
    if len(set(out.columns)) < 2:
        raise ConfigError(
            f"retrieval {out.name!r} needs two or more different columns (e.g. image,caption), "
            f"got {', '.join(out.columns) or 'none'}"
        )
    if out.name in frame.columns:
        raise ConfigError(f"retrieval {out.name!r} is named like a column; give the task another name")
    check_columns(frame, out.columns, "retrieval")
    taken = sorted(set(out.columns) & set(labels))
    if taken:
        raise ConfigError(f"retrieval column(s) {', '.join(taken)} are also labels; a tower must be an input")
    return out.model_copy(update={"type": "retrieval"})


def _check_towers(retrieval: list[OutputConfig], inputs: list[InputConfig]) -> None:
    """Each tower must be an image, text, audio or video input of the model."""
    types = {i.name: i.type for i in inputs}
    for out in retrieval:
        for column in out.columns:
            if column not in types:
                raise ConfigError(f"retrieval column {column!r} is not among the inputs; add it to inputs:")
            if types[column] not in MEDIA_TYPES:
                raise ConfigError(
                    f"retrieval column {column!r} is {types[column]}; towers must be image, text, audio or "
                    f"video columns (set the type with --type {column}=text)"
                )


def with_sound_tracks(inputs: list[InputConfig]) -> list[InputConfig]:
    """`inputs`, each video column with `audio:` set followed by its sound-track input
    `NAME:audio` (type audio, its own group; `audio: {...}` are its preprocessing options)."""
    result = []
    for col in inputs:
        result.append(col)
        if not col.audio:
            continue
        if col.type != "video":
            raise ConfigError(f"input {col.name!r}: audio: is for video columns, not {col.type} columns")
        key = sound_track_key(col.name)
        options = col.audio if isinstance(col.audio, dict) else {}
        result.append(
            InputConfig(name=key, type="audio", preprocessing=options, group=key, sound_of=col.name)
        )
    return result


def assign_groups(
    inputs: list[InputConfig],
    share: bool,
    tabular: str,
    columns: set[str],
    defaults: dict[str, ComponentSpec] | None = None,
) -> list[ResolvedInput]:
    """Give every input (each with its type) its group and the group's encoder, named
    in full so the saved config says exactly what was built: the one its columns name,
    else the default for its modality (`defaults`, plait.presets; else DEFAULT_ENCODERS)."""
    defaults = defaults or {k: ComponentSpec(name=v) for k, v in DEFAULT_ENCODERS.items()}
    by_group: dict[str, list[InputConfig]] = {}
    for col in inputs:
        if col.type is None:
            raise ConfigError(f"input {col.name!r} has no type")
        if col.group is not None:
            group = col.group
        elif col.type in MEDIA_TYPES:
            group = col.type if share else col.name
        else:
            group = "tabular" if tabular == "group" else col.name
        by_group.setdefault(group, []).append(col)
    specs: dict[str, ComponentSpec] = {}
    for group, members in by_group.items():
        kinds = {"tabular" if m.type in TABULAR_TYPES else m.type for m in members}
        if len(kinds) > 1:
            raise ConfigError(f"group {group!r} mixes column types {', '.join(sorted(kinds))}")
        explicit = {m.encoder.model_dump_json(): m.encoder for m in members if m.encoder}
        if len(explicit) > 1:
            raise ConfigError(f"the columns of group {group!r} name different encoders; give one")
        kind = kinds.pop()
        tabular_group = kind == "tabular" and (len(members) > 1 or members[0].name != group)
        if tabular_group and group in columns:
            raise ConfigError(f"group name {group!r} is also a column name; choose another group name")
        modality = "tabular" if tabular_group else str(members[0].type)
        default = defaults[modality]
        if needs_own_encoder(members) and default.name in PRETRAINED_NAMES:
            # The config asks for augmentation (which cached features cannot vary per
            # epoch) or grey images: its choice wins over the preset, with the
            # from-scratch encoder.
            default = ComponentSpec(name=DEFAULT_ENCODERS[modality])
        specs[group] = next(iter(explicit.values()), None) or default.model_copy(deep=True)
    group_of = {id(col): group for group, members in by_group.items() for col in members}
    return [
        ResolvedInput.model_validate(
            {**col.model_dump(), "group": group_of[id(col)], "encoder": specs[group_of[id(col)]].model_dump()}
        )
        for col in inputs
    ]


def _input_type(name: str, type_: str) -> str:
    if type_ == "binary":  # a two-valued input is a category
        return "category"
    if type_ not in INPUT_TYPES:
        raise ConfigError(
            f"column {name!r} has type {type_!r}, which is not an input type; "
            f"set one of {', '.join(INPUT_TYPES)} with --type {name}=TYPE"
        )
    return type_
