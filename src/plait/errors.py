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
        super().__init__(" ".join(_from_worker(message, type(self).__name__).split("\n")))


def _from_worker(message: str, name: str) -> str:
    """torch re-raises an error from a DataLoader worker as the same type, with the
    worker's traceback as its message ("Caught DataError in DataLoader worker process
    0.\nOriginal Traceback (most recent call last): … DataError: column 'x', row 7: …"):
    keep the user's own line, its last part."""
    if message.startswith("Caught ") and "Original Traceback" in message:
        return message.rpartition(f"{name}: ")[2].strip()
    return message


class PlaitWarning(UserWarning):
    """A guess Plait made about the user's data that may not be what they meant, named
    in one line with its fix (`--type COL=TYPE`). The CLI prints each once, as
    `warning: ...`; the Python API raises it as a warning."""


class DataError(PlaitError):
    """The input table, a cell or a referenced file is unusable."""


class ConfigError(PlaitError):
    """The config names something that does not exist or has the wrong shape."""


class RunFolderError(PlaitError):
    """A run folder is missing a file or holds a damaged one."""


class BadRowsWarning(PlaitWarning):
    """Rows with an unusable cell were left out or read with that cell missing
    (on_bad_row skip / missing); the message gives their count (one line in the CLI)."""
