"""A scan's batches: work items from the workers (infer/scan_worker.py) to journal records, one definition for the
local engine (infer/scan.py) and the Ray engine (infer/scan_ray.py).

    sc = Scanner(inspector, run_dir)       # the run folder's journal: what is done, what is new
    for item in items: sc.add(item)        # scored in batches through score_batch; duplicates counted once
    sc.flush()

Records are keyed by the photo's sha256 and the model's sha256: a rerun skips what is done, and identical photos
under several paths are scored once.
"""
from __future__ import annotations

import io
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from genuine.infer.errors import UsageError
from genuine.infer.heatmap import overlay, overlay_face, zone_boxes
from genuine.infer.journal import Journal
from genuine.infer.photo import printable
from genuine.infer.preprocess import letterbox_geometry
from genuine.infer.scan_worker import Item
from genuine.infer.sources import Entry, entries
from genuine.infer.verdict import GENUINE


class Scanner:
    def __init__(self, inspector, run_dir: Path, batch: int = 16):
        self.insp, self.run_dir, self.batch = inspector, run_dir, batch
        self.model_sha = inspector.model.sha256
        (run_dir / "thumbs").mkdir(parents=True, exist_ok=True)
        self.journal = Journal(run_dir / "results.jsonl")
        others = {r["model_sha256"] for r in self.journal.records if r.get("model_sha256") not in (None, self.model_sha)}
        if others:
            raise UsageError(f"{run_dir} holds results of another model ({sorted(others)[0][:16]}...); "
                             f"choose a new --out")
        if self.journal.garbage:
            print(f"genuine scan: {self.journal.garbage} damaged line(s) in {printable(str(self.journal.path))} "
                  f"skipped; the photos they stood for are scored again", file=sys.stderr)
        self.done_sha = {r["sha256"] for r in self.journal.records if r.get("sha256")}
        self.done_key = {r["path"]: tuple(r["stamp"]) for r in self.journal.records}
        self.queue: list[tuple[Item, bool]] = []   # (item, a duplicate of a photo scored already or queued)
        self.new = 0

    def finished(self, e: Entry) -> bool:
        return self.done_key.get(e.key) == e.stamp

    def _record(self, rec: dict) -> None:
        self.journal.append({**rec, "model_sha256": self.model_sha})
        self.done_key[rec["path"]] = tuple(rec["stamp"])
        if rec.get("sha256"):
            self.done_sha.add(rec["sha256"])
        self.new += 1

    def add(self, item: Item) -> None:
        if item.failed:
            self._record(_error_record(item))
        else:   # a photo scored already or queued is scored once; this path joins it
            self.queue.append((item, item.sha256 in self.done_sha or any(q.sha256 == item.sha256 for q, _ in self.queue)))
        if sum(not dup for _, dup in self.queue) >= self.batch:
            self.flush()

    def flush(self) -> None:
        for rec, thumb in score_batch(self.insp, [q for q, dup in self.queue if not dup]):
            if thumb is not None:
                (self.run_dir / rec["thumb"]).write_bytes(thumb)
            self._record(rec)
        for q, dup in self.queue:
            if dup:
                self._record(_path_record(q.entry.key, list(q.entry.stamp), q.sha256))
        self.queue = []

    def arrived(self, rec: dict, thumb: bytes | None) -> None:
        """A record scored elsewhere (a Ray actor): journal it, or, when its photo was scored already under
        another path, journal the path only, so a photo is counted once whichever engine scored it."""
        if rec.get("type") == "photo" and rec["sha256"] in self.done_sha:
            rec = _path_record(rec["path"], rec["stamp"], rec["sha256"])
        elif thumb is not None:
            (self.run_dir / rec["thumb"]).write_bytes(thumb)
        self._record(rec)


def _jpeg(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=85)
    return buf.getvalue()


def _path_record(path: str, stamp: list, sha256: str) -> dict:
    """Another path of a photo scored already: counted once, reported with all its paths."""
    return {"type": "path", "path": path, "stamp": stamp, "sha256": sha256}


def _error_record(item: Item) -> dict:
    e = item.entry
    return {"type": "error", "path": e.key, "stamp": list(e.stamp), "sha256": item.sha256,
            "error_kind": item.error_kind, "error": item.error}


def _judged(insp, items: list[Item]) -> list:
    """Results of items that are not errors, in order: a comparator's faces through its FaceJudge (infer/judge.py, the
    inspector's own step), its refusals with rectification's instruction; a whole-photo model batched."""
    if not insp.model.is_comparator:
        res = insp.model.run(np.stack([q.x for q in items]))
        return [insp.judge_photo({n: v[k] for n, v in res.items()}, q.quality, q.entry.key)
                for k, q in enumerate(items)]
    judge = insp.judge
    judge.refresh()   # what a trainer changed in the store since the last batch (genuine photos, templates)
    known = [q.face is not None and judge.knows(q.face.template) for q in items]
    faces = iter(judge.score_faces([q.face for q, ok in zip(items, known) if ok]))
    out = []
    for q, ok in zip(items, known):
        if ok:
            out.append(next(faces))
        elif q.face is None:
            out.append(judge.not_rectified(q.entry.key, q.rect))
        else:   # its template left the store mid-run: comparing it with another would be a guess
            rect = {**q.rect, "reason_code": "not_covered", "reason": "the template this photo was aligned to was "
                    "removed from the reference store during the scan: scan it again"}
            out.append(judge.not_rectified(q.entry.key, rect))
    return out


def score_batch(insp, fresh: list[Item]) -> list[tuple[dict, bytes | None]]:
    """Worker items (scan_worker.decode) -> journal records with their heatmap thumbnails (JPEG bytes, named in
    rec["thumb"]); the model runs once per batch. One definition for the local scan and the Ray actors."""
    out: list[tuple[dict, bytes | None]] = [(_error_record(q), None) for q in fresh if q.failed]
    fresh = [q for q in fresh if not q.failed]
    if not fresh:
        return out
    for q, r in zip(fresh, _judged(insp, fresh)):
        thumb = name = None
        if r.verdict != GENUINE and r.heatmap is not None:
            name = f"thumbs/{q.sha256[:20]}.jpg"
            if q.face is not None:
                thumb = _jpeg(overlay_face(q.face.x, r.heatmap, boxes=zone_boxes(r.evidence)))
            else:
                _, nw, nh, left, top = letterbox_geometry(*q.photo_size, insp.size)
                picture = Image.fromarray(q.x[top:top + nh, left:left + nw])
                thumb = _jpeg(overlay(picture, r.heatmap, insp.size))
        rec = {k2: v for k2, v in r.to_dict().items() if k2 not in ("source", "timing_ms", "model_sha256")}
        out.append(({"type": "photo", "path": q.entry.key, "stamp": list(q.entry.stamp), **rec,
                     "sha256": q.sha256, "thumb": name}, thumb))
    return out


def listing(sources: list[str]) -> list[Entry]:
    """Every entry of the sources once: a path given twice (two sources, a list and a folder) is one item."""
    listed, seen = [], set()
    for e in entries(sources):
        if e.key not in seen:
            seen.add(e.key)
            listed.append(e)
    return listed
