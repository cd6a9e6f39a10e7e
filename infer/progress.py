"""A one-line progress report on stderr (count, rate, ETA) for every stage longer than a few seconds: scans,
rectifying a training set, extracting its features, adding genuine photos to a store. tqdm is not part of the
handheld install; this is 30 lines.

    bar = Progress(len(todo), label="rectify train", unit="photos")
    for x in todo: ...; bar.step()
    bar.close()
"""
from __future__ import annotations

import sys
import time


class Progress:
    def __init__(self, total: int | None, enabled: bool = True, label: str = "scan", unit: str = "photos"):
        """total None: not known in advance (folders and archives listed as they are read): count and rate only."""
        self.total, self.done, self.t0 = total, 0, time.perf_counter()
        self.last = self.t0   # the first line after `every` seconds: a rate over one item says nothing
        self.enabled, self.label, self.unit = enabled and (total is None or total > 0), label, unit

    def step(self, n: int = 1) -> None:
        self.done += n
        now = time.perf_counter()
        every = 0.5 if sys.stderr.isatty() else 10.0  # a log file gets a line every 10 s, not a flood
        if self.enabled and (now - self.last > every or (self.total is not None and self.done >= self.total)):
            self._line(now)

    def _line(self, now: float) -> None:
        rate = self.done / max(now - self.t0, 1e-9)
        end = "\n" if not sys.stderr.isatty() else ""
        left = "" if self.total is None else f"/{self.total}"
        eta = "" if self.total is None else f"  ETA {(self.total - self.done) / max(rate, 1e-9):.0f}s"
        print(f"\r{self.label} {self.done}{left}  {rate:.1f} {self.unit}/s{eta} ", end=end, file=sys.stderr,
              flush=True)
        self.last = now

    def close(self) -> None:
        """An unknown total's final count (a known one printed it at its last step); a terminal's line ended."""
        if self.enabled and self.total is None and self.done:
            self._line(time.perf_counter())
        if self.enabled and sys.stderr.isatty():
            print(file=sys.stderr)
