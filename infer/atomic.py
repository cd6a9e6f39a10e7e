"""The one atomic file write: readers and crashes see the old file or the new one, never half a file.

    with atomic_write(path, "w", newline="") as fh:
        fh.write(text)

Everything the tool leaves for people or for a later run goes through it: checkpoints, manifests, cached faces,
exported models and their cards, evaluation reports, scan outputs and report pages.
"""
from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from pathlib import Path

MODE = 0o644   # what a new output gets: readable by colleagues on a shared drive (mkstemp's own 0600 would hide it)


@contextlib.contextmanager
def atomic_write(path, mode: str = "wb", encoding: str | None = None, newline: str | None = None):
    """A file object on a temporary file beside `path`; on a clean exit it is flushed, fsynced, given MODE (or the
    mode of the file it replaces) and renamed over `path`. On any exception, Ctrl-C included, the temporary file is
    removed and `path` is untouched."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if "b" not in mode and encoding is None:
        encoding = "utf-8"
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode, encoding=encoding, newline=newline) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        try:
            keep = stat.S_IMODE(path.stat().st_mode)
        except FileNotFoundError:
            keep = MODE
        os.chmod(tmp, keep)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_bytes(path, data: bytes) -> None:
    with atomic_write(path, "wb") as fh:
        fh.write(data)


def write_text(path, text: str) -> None:
    with atomic_write(path, "w") as fh:
        fh.write(text)
