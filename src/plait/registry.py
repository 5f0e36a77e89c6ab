"""One small name → builder registry, shared by encoders, fusions and heads.

A builder's signature is its schema: `build` reports unknown parameters together
with the valid ones, a value outside a `Literal[...]` annotation together with the
allowed ones, and an unknown name together with the registered names (and a "did you
mean" when the typo is close).
"""

from __future__ import annotations

import difflib
import inspect
import typing
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar

from plait.errors import ConfigError

T = TypeVar("T")


@dataclass(frozen=True)
class Entry(Generic[T]):
    name: str
    builder: Callable[..., T]
    # Column types an encoder accepts, or target types a head serves.
    types: tuple[str, ...] = ()
    description: str = ""
    # Parameters filled in by build.py from fitted processors, not by the user.
    data_params: tuple[str, ...] = field(default=())


class Registry(Generic[T]):
    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, Entry[T]] = {}

    def register(
        self, name: str, *, types: Iterable[str] = (), data_params: Iterable[str] = ()
    ) -> Callable[[Callable[..., T]], Callable[..., T]]:
        def decorator(builder: Callable[..., T]) -> Callable[..., T]:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            doc = inspect.getdoc(builder) or ""
            self._entries[name] = Entry(name, builder, tuple(types), doc.split("\n")[0], tuple(data_params))
            return builder

        return decorator

    def names(self, type_: str | None = None) -> list[str]:
        return sorted(n for n, e in self._entries.items() if type_ is None or type_ in e.types)

    def get(self, name: str) -> Entry[T]:
        if name not in self._entries:
            close = difflib.get_close_matches(name, self._entries, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ConfigError(
                f"unknown {self.kind} {name!r}.{hint} Valid {self.kind}s: {', '.join(self.names())}"
            )
        return self._entries[name]

    def params(self, name: str) -> list[str]:
        """User-settable parameters of `name` (its signature minus data-derived ones)."""
        entry = self.get(name)
        sig = inspect.signature(entry.builder)
        return [p for p in sig.parameters if p not in entry.data_params]

    def check_params(self, name: str, user_params: dict[str, Any]) -> None:
        valid = self.params(name)
        unknown = sorted(set(user_params) - set(valid))
        if unknown:
            raise ConfigError(
                f"{self.kind} {name!r} got unknown parameter(s) {', '.join(unknown)}; "
                f"valid: {', '.join(valid) or '(none)'}"
            )
        for key, allowed in _choices(self.get(name).builder).items():
            if key in user_params and user_params[key] not in allowed:
                raise ConfigError(
                    f"{self.kind} {name!r}: {key} must be one of {', '.join(map(repr, allowed))}; "
                    f"got {user_params[key]!r}"
                )

    def build(self, name: str, user_params: dict[str, Any], **data_params: Any) -> T:
        self.check_params(name, user_params)
        try:
            return self.get(name).builder(**user_params, **data_params)
        except (TypeError, ValueError) as err:
            if not user_params:
                raise  # nothing the user set: a bug, keep the traceback
            raise ConfigError(
                f"{self.kind} {name!r} rejected its parameters {user_params}: {' '.join(str(err).split())}"
            ) from None

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self):
        return iter(self._entries.values())


def _choices(builder: Callable[..., Any]) -> dict[str, tuple[Any, ...]]:
    """Parameters annotated `Literal[...]` → their allowed values."""
    target = builder.__init__ if inspect.isclass(builder) else builder
    try:
        hints = typing.get_type_hints(target)
    except (NameError, TypeError):  # an annotation that does not resolve: nothing checked
        return {}
    return {k: typing.get_args(v) for k, v in hints.items() if typing.get_origin(v) is Literal}
