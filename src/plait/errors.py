"""User-facing errors.

A `PlaitError` is a mistake the user can fix (bad path, unknown column, bad config).
The CLI prints its message as one line on stderr and exits with code 2; anything
else is a bug in Plait and keeps its traceback.
"""

from __future__ import annotations


class PlaitError(Exception):
    """A problem with the user's data, config or arguments, described in one line."""

    def __init__(self, message: str) -> None:
        # One line: the CLI prints exactly this.
        super().__init__(" ".join(message.split("\n")))


class DataError(PlaitError):
    """The input table, a cell or a referenced file is unusable."""


class ConfigError(PlaitError):
    """The config names something that does not exist or has the wrong shape."""


class RunFolderError(PlaitError):
    """A run folder is missing a file or holds a damaged one."""
