"""Errors that mean "the input is wrong" (as opposed to a bug).

The command line prints their message as one line and exits non-zero; every message
names the file, event or key, what was expected, and what was received.
"""

from __future__ import annotations

import zipfile
import zlib

__all__ = [
    "ARCHIVE_ERRORS",
    "InputError",
    "check_fraction",
]

ARCHIVE_ERRORS: tuple[type[BaseException], ...] = (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zlib.error)
"""What numpy/zipfile raise for an .npz that is cut short, corrupted or not an archive: a
reader catches these around every read and raises its own error naming the file."""


class InputError(ValueError):
    """Bad user input: a file, event, key or value that is not what was expected."""


class TableError(InputError):
    """A likelihood table (file or arguments) is not what docs/formats.md §3 says."""


class ResponseMapError(TableError):
    """No detector-response map can be fitted to this sample (too few events, one direction)."""


class AcceptanceError(TableError):
    """No acceptance can be fitted to this sample (too few events, one direction)."""


class PointingError(InputError):
    """A burst or option the pointing cannot use."""


def check_fraction(value: float, what: str) -> float:
    """``value`` as a float strictly between 0 and 1, else an :class:`InputError` naming ``what``."""
    value = float(value)
    if not 0.0 < value < 1.0:
        raise InputError(f"{what}: expected a fraction strictly between 0 and 1; received {value}")
    return value
