"""A scan's run folder: its append-only journal (the only state of a run) and the lock that keeps one writer.

    with lock_run(run_dir):                       # RunLocked when another scan writes there
        j = Journal(run_dir / "results.jsonl")    # j.records: what earlier runs finished; j.garbage: lines skipped
        j.append({"path": ..., "stamp": [...], ...})
        j.close()

A torn last line (kill -9 mid-write) is cut off; a damaged line anywhere else is skipped and counted, and the
photo it stood for is scored again. Records are fsynced every FSYNC_EVERY appends and at close.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from genuine.infer.errors import GenuineError

FSYNC_EVERY = 16


class RunLocked(GenuineError, RuntimeError):
    """Another scan is writing to this run folder."""


def lock_run(run_dir: Path):
    """An exclusive lock on RUN_DIR/.lock for as long as the returned file stays open: two scans writing one
    journal would score every photo twice. Released by the OS when the process dies, so kill -9 leaves no
    stale lock behind."""
    fh = open(run_dir / ".lock", "a+")
    try:
        try:
            import fcntl

            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except ImportError:   # pragma: no cover - Windows: msvcrt locks a byte range instead
            import msvcrt

            msvcrt.locking(fh.fileno(), msvcrt.LK_NBLCK, 1)
    except OSError:
        fh.close()
        raise RunLocked(f"{run_dir} is in use by another genuine scan; wait for it or choose another --out") from None
    return fh


class Journal:
    """Append-only results.jsonl: the only state of a run, safe against kill -9 at any moment."""

    def __init__(self, path: Path):
        self.path = path
        self.records: list[dict] = []
        self.garbage = 0      # lines that are not a record (a damaged disk, an editor): skipped, rescored
        if path.exists():
            raw = path.read_bytes()
            good = raw[: raw.rfind(b"\n") + 1]          # a torn last line is cut off, not parsed
            if len(good) != len(raw):
                with open(path, "r+b") as fh:
                    fh.truncate(len(good))
            for line in good.split(b"\n"):
                if not line.strip():
                    continue
                try:
                    rec = json.loads(line)
                except ValueError:
                    rec = None
                if isinstance(rec, dict) and isinstance(rec.get("path"), str) and isinstance(rec.get("stamp"), list):
                    self.records.append(rec)
                else:
                    self.garbage += 1
        self.fh = open(path, "a", encoding="utf-8")
        self.pending = 0

    def append(self, rec: dict) -> None:
        self.fh.write(json.dumps(rec) + "\n")
        self.fh.flush()
        self.pending += 1
        if self.pending >= FSYNC_EVERY:
            self.sync()

    def sync(self) -> None:
        self.fh.flush()
        os.fsync(self.fh.fileno())
        self.pending = 0

    def close(self) -> None:
        if not self.fh.closed:
            self.sync()
            self.fh.close()

    def close_and_records(self) -> list[dict]:
        self.close()
        return self.records
