"""Writing a file so that a crash never leaves half of one: a temporary name beside it, then a rename.

Every file edkeras writes goes through :func:`atomic_path`: the content is written to
``.NAME.tmp-HOST-PID`` in the target's folder and renamed to ``NAME`` only when complete
(``os.replace``: atomic on one file system), so a reader sees the old file or the new one,
never a part. If the writer dies, its temporary file stays behind; the next write of the
same target on the same host removes the temporary files of processes that no longer run
(on a shared file system another host's are left alone: its processes cannot be seen).

Example:
    >>> with atomic_path("runs/r1/metrics.json") as tmp:
    ...     tmp.write_text("{}")
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["atomic_path", "jsonable", "remove_stale_temporaries", "temporary_name", "write_json", "write_text"]

_HOST = re.sub(r"[^A-Za-z0-9_.-]", "_", socket.gethostname()) or "host"


def temporary_name(path: str | os.PathLike) -> Path:
    """The temporary name this process writes ``path`` under."""
    p = Path(path)
    return p.with_name(f".{p.name}.tmp-{_HOST}-{os.getpid()}")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def remove_stale_temporaries(path: str | os.PathLike) -> list[Path]:
    """Remove the temporary files of ``path`` left by dead processes of this host; return them."""
    p = Path(path)
    if not p.parent.is_dir():
        return []
    removed = []
    pattern = re.compile(rf"^\.{re.escape(p.name)}\.tmp-{re.escape(_HOST)}-(\d+)$")
    for f in p.parent.iterdir():
        m = pattern.match(f.name)
        if m and int(m.group(1)) != os.getpid() and not _alive(int(m.group(1))):
            if f.is_dir():
                shutil.rmtree(f, ignore_errors=True)
            else:
                f.unlink(missing_ok=True)
            removed.append(f)
    return removed


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield the temporary name to write ``path`` under; rename it to ``path`` when the block ends.

    The target's folder is created if needed. If the block raises, the temporary file (or
    folder) is removed and ``path`` is left as it was.
    """
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(p)
    tmp = temporary_name(p)
    try:
        yield tmp
        os.replace(tmp, p)
    finally:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        elif tmp.exists():
            tmp.unlink()


def write_text(path: str | os.PathLike, text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically; return the path."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding=encoding)
    return Path(path)


def jsonable(obj: Any) -> Any:
    """A JSON-ready copy: tuples → lists, NaN/inf → null, numpy scalars and arrays → Python."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if hasattr(obj, "tolist") and getattr(obj, "ndim", 0) > 0:  # a numpy array
        return jsonable(obj.tolist())
    if hasattr(obj, "item") and not isinstance(obj, (str, bytes)) and getattr(obj, "ndim", 0) == 0:
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, Path):
        return str(obj)
    return obj


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Write ``obj`` as JSON atomically (temporary name, then rename); NaN becomes null."""

    return write_text(path, json.dumps(jsonable(obj), indent=2, allow_nan=False) + "\n")
