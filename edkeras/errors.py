"""Errors that mean "the input is wrong" (as opposed to a bug).

The command line prints their message as one line and exits non-zero; every message
names the file, event or key, what was expected, and what was received.
"""

from __future__ import annotations

__all__ = ["InputError"]


class InputError(ValueError):
    """Bad user input: a file, event, key or value that is not what was expected."""
