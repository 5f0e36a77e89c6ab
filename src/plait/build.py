"""Config + fitted processors → MultimodalModel. The one place names are looked up."""

from __future__ import annotations

from plait.config import DEFAULT_ENCODERS, DEFAULT_HEADS, ComponentSpec, PlaitConfig
from plait.data.processors import InputProcessor, TargetProcessor
from plait.encoders import ENCODERS
from plait.errors import ConfigError
from plait.fusion import FUSIONS
from plait.heads import HEADS
from plait.model import MultimodalModel
from plait.registry import Registry


def encoder_spec(type_: str, spec: ComponentSpec | None) -> ComponentSpec:
    return spec or ComponentSpec(name=DEFAULT_ENCODERS[type_])


def head_spec(type_: str, spec: ComponentSpec | None) -> ComponentSpec:
    return spec or ComponentSpec(name=DEFAULT_HEADS[type_])


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


def validate_components(config: PlaitConfig) -> None:
    """Fail fast (before any data is read) on unknown names or mismatched types."""
    for col in config.inputs:
        assert col.type is not None
        spec = encoder_spec(col.type, col.encoder)
        _check_type(ENCODERS, spec, col.type, col.name)
        ENCODERS.check_params(spec.name, spec.params)
    FUSIONS.check_params(config.fusion.name, config.fusion.params)
    for out in config.outputs:
        assert out.type is not None
        spec = head_spec(out.type, out.head)
        _check_type(HEADS, spec, out.type, out.name)
        HEADS.check_params(spec.name, spec.params)


def build_model(
    config: PlaitConfig,
    processors: dict[str, InputProcessor],
    target_processors: dict[str, TargetProcessor],
) -> MultimodalModel:
    validate_components(config)
    encoders = {}
    for col in config.inputs:
        spec = encoder_spec(col.type, col.encoder)  # type: ignore[arg-type]
        data = _data_params(ENCODERS, spec.name, processors[col.name].encoder_kwargs())
        encoders[col.name] = ENCODERS.build(spec.name, spec.params, **data)
    in_dims = {name: enc.out_dim for name, enc in encoders.items()}
    fusion = FUSIONS.build(config.fusion.name, config.fusion.params, in_dims=in_dims)
    heads = {}
    for out in config.outputs:
        spec = head_spec(out.type, out.head)  # type: ignore[arg-type]
        available = {"in_dim": fusion.out_dim, **target_processors[out.name].head_kwargs()}
        heads[out.name] = HEADS.build(spec.name, spec.params, **_data_params(HEADS, spec.name, available))
    return MultimodalModel(encoders, fusion, heads)
