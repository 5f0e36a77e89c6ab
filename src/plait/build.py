"""Config + fitted processors → MultimodalModel. The one place names are looked up."""

from __future__ import annotations

from plait.config import ComponentSpec, ResolvedConfig, ResolvedInput, input_units, is_tabular_group
from plait.data.processors import InputProcessor, TargetProcessor
from plait.encoders import ENCODERS, Encoder
from plait.errors import ConfigError
from plait.fusion import FUSIONS
from plait.fusion.late import LateFusion
from plait.heads import HEADS, Head
from plait.model import MultimodalModel
from plait.registry import Registry


def _check_type(registry: Registry, spec: ComponentSpec, type_: str, column: str) -> None:
    entry = registry.get(spec.name)
    if entry.types and type_ not in entry.types:
        valid = ", ".join(registry.names(type_))
        raise ConfigError(
            f"column {column!r}: {registry.kind} {spec.name!r} does not take {type_} columns; "
            f"valid for {type_}: {valid}"
        )


def _data_params(registry: Registry, name: str, available: dict) -> dict:
    wanted = registry.get(name).data_params
    return {k: v for k, v in available.items() if k in wanted}


def _unit_type(key: str, members: list[ResolvedInput]) -> str:
    """The type an input's encoder must take: a tabular group is "tabular"."""
    return "tabular" if is_tabular_group(key, members) else members[0].type


def _build_head(spec: ComponentSpec, in_dim: int, target_kwargs: dict) -> Head:
    available = {"in_dim": in_dim, **target_kwargs}
    return HEADS.build(spec.name, spec.params, **_data_params(HEADS, spec.name, available))


def validate_components(config: ResolvedConfig) -> None:
    """Fail fast, before any data is transformed, on unknown names, parameters or
    mismatched types. Called once, where a config is resolved (plait.data.schema.resolved,
    for training and for a loaded run); build_model then trusts what it is given."""
    for key, members in input_units(config).items():
        type_ = _unit_type(key, members)
        spec = members[0].encoder
        _check_type(ENCODERS, spec, type_, key)
        ENCODERS.check_params(spec.name, spec.params)
    FUSIONS.check_params(config.fusion.name, config.fusion.params)
    for out in config.outputs:
        spec = out.head
        _check_type(HEADS, spec, out.type, out.name)
        HEADS.check_params(spec.name, spec.params)
        if config.fusion.name == "late" and HEADS.get(spec.name).builder.wants_tokens:
            raise ConfigError(f"late fusion cannot combine {spec.name} heads; choose another fusion")


def build_model(
    config: ResolvedConfig,
    processors: dict[str, InputProcessor],
    target_processors: dict[str, TargetProcessor],
) -> MultimodalModel:
    encoders: dict[str, Encoder] = {}  # group → its encoder
    inputs: dict[str, str] = {}  # input key → its group
    in_dims: dict[str, int] = {}
    channels: dict[str, tuple[int, ...]] = {}  # input key → its encoder's feature-map channels
    for key, members in input_units(config).items():
        group = members[0].group
        if group not in encoders:  # built once per group: its columns share the weights
            spec = members[0].encoder
            data = _data_params(ENCODERS, spec.name, processors[key].encoder_kwargs())
            encoders[group] = ENCODERS.build(spec.name, spec.params, **data)
        inputs[key] = group
        in_dims[key] = encoders[group].out_dim
        channels[key] = tuple(encoders[group].feature_channels)
    fusion = FUSIONS.build(config.fusion.name, config.fusion.params, in_dims=in_dims)
    heads: dict[str, Head] = {}
    for out in config.outputs:
        spec = out.head
        kwargs = target_processors[out.name].head_kwargs()
        # For heads that attend over tokens, and those that draw boxes on feature maps.
        kwargs = {**kwargs, "token_dims": in_dims, "feature_channels": channels}
        if isinstance(fusion, LateFusion):  # model-level: one head per input, combined
            per_input = {key: _build_head(spec, dim, kwargs) for key, dim in in_dims.items()}
            heads[out.name] = fusion.wrap(per_input)
        else:
            heads[out.name] = _build_head(spec, fusion.out_dim, kwargs)
    learned = config.missing_modality == "learned"
    return MultimodalModel(encoders, inputs, fusion, heads, learned_missing=learned)
