"""What the `plait` process adds around every command: a user's mistake (PlaitError)
as one line on stderr and exit code 2, each PlaitWarning as one line, and the moment
the process started (so that --time-limit covers importing torch too)."""

from __future__ import annotations

import contextlib
import functools
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import typer

from plait.errors import PlaitError, PlaitWarning

F = TypeVar("F", bound=Callable[..., Any])
# Set by main(), before torch is imported. None when the app is called in-process
# (tests): then a command's own start counts.
_started: float | None = None


def mark_start() -> None:
    global _started
    _started = time.monotonic()


def started() -> float:
    """When the `plait` process started, or now when the app runs in-process."""
    return _started or time.monotonic()


def user_errors(fn: F) -> F:
    """Turn a PlaitError into one line on stderr and exit code 2 (no traceback), and
    each PlaitWarning into one line on stderr."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            with one_line_warnings():
                return fn(*args, **kwargs)
        except PlaitError as error:
            print(f"error: {error}", file=sys.stderr)
            raise typer.Exit(getattr(error, "exit_code", 2)) from None
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]


@contextlib.contextmanager
def one_line_warnings() -> Iterator[None]:
    """Each PlaitWarning as `warning: ...` on stderr, once per command however often it
    is raised (cv and benchmark resolve the table once per run); other warnings as usual."""
    shown: set[str] = set()
    with warnings.catch_warnings():
        default = warnings.showwarning

        def show(message: Warning | str, category: type[Warning], *args: Any, **kwargs: Any) -> None:
            if not issubclass(category, PlaitWarning):
                default(message, category, *args, **kwargs)
            elif str(message) not in shown:
                shown.add(str(message))
                print(f"warning: {message}", file=sys.stderr)

        warnings.showwarning = show
        yield
