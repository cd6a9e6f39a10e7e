"""`genuine scan`: batch checks of seizure photo archives that lose nothing and count nothing twice.

    genuine scan model.onnx /archive/case42 case43.zip --out runs/case42 --workers 2

Worker processes (infer/scan_worker.py) read, hash and decode photos (and, for a comparator model, rectify them onto
their product's template and score its genuine variation: the costly part runs in parallel); the main process
batches them through onnxruntime and appends one JSON line per finished photo to RUN_DIR/results.jsonl
(fsynced every few records and at exit). Records are keyed by the photo's sha256 and the
model's sha256: a rerun skips what is done (unchanged paths are not even re-read), a torn
last line from a kill -9 is cut off, and identical photos under several paths are scored once. The journal
and the run folder's lock are infer/journal.py.
"""
from __future__ import annotations

import io
import os
import sys
import time
from multiprocessing import get_context
from pathlib import Path

import numpy as np
from PIL import Image

from genuine.infer.contract import validation_text
from genuine.infer.errors import UsageError
from genuine.infer.heatmap import overlay, overlay_face
from genuine.infer.journal import Journal, RunLocked, lock_run  # noqa: F401 (RunLocked: the scan API)
from genuine.infer.photo import printable
from genuine.infer.progress import Progress  # noqa: F401 (scan_ray imports it from here)
from genuine.infer.preprocess import letterbox_geometry
from genuine.infer.judge import TemplateMissing
from genuine.infer.scan_worker import Item, WorkerSetup, decode
from genuine.infer.sources import Entry, entries
from genuine.infer.verdict import ERROR, GENUINE, INCONCLUSIVE, SUSPECT


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
            print(f"genuine scan: {self.journal.garbage} damaged line(s) in {printable(str(self.journal.path))} skipped; the photos "
                  f"they stood for are scored again", file=sys.stderr)
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
    if not hasattr(getattr(insp, "judge", None), "score_faces"):
        res = insp.model.run(np.stack([q.x for q in items]))
        return [insp.judge_photo({n: v[k] for n, v in res.items()}, q.quality, q.entry.key)
                for k, q in enumerate(items)]
    judge = insp.judge
    judge.refresh()   # a template added to the store since the workers loaded it: its key is found
    known = [q.face is not None and _known(judge, q.face.template) for q in items]
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


def _known(judge, key: str) -> bool:
    try:
        judge.template(key)
        return True
    except TemplateMissing:
        return False


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
                thumb = _jpeg(overlay_face(q.face.x, r.heatmap))
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


def scan(inspector, sources: list[str], run_dir, workers: int = 0, batch: int = 16, progress: bool = True,
         locked: bool = False) -> dict:
    """Score every photo of `sources` not yet in RUN_DIR's journal. locked: the caller holds lock_run(run_dir)."""
    run_dir = Path(run_dir)
    t0 = time.perf_counter()
    lock = None if locked else lock_run(run_dir)
    sc = Scanner(inspector, run_dir, batch)
    listed = listing(sources)
    todo = [e for e in listed if not sc.finished(e)]
    bar = Progress(len(todo), progress)
    workers = workers or os.cpu_count() or 1
    # spawn for comparator models: a fork of a process whose OpenCV threads hold a lock (templates were just
    # described with SIFT) can hang in the child
    fork = sys.platform.startswith("linux") and not inspector.model.is_comparator
    ctx = get_context("fork" if fork else "spawn")
    try:
        with ctx.Pool(workers, WorkerSetup.of(inspector).start) as pool:
            for item in pool.imap_unordered(decode, todo, chunksize=4):
                sc.add(item)
                bar.step()
        sc.flush()
    finally:
        sc.journal.close()
        bar.close()
        if lock is not None:
            lock.close()
    return {"listed": len(listed), "already_done": len(listed) - len(todo), "new": sc.new,
            "seconds": time.perf_counter() - t0}


FAIL_CODES = {"suspect": (SUSPECT, 1), "inconclusive": (INCONCLUSIVE, 2), "error": (ERROR, 3)}


def main(args) -> int:
    """Exit codes: 0 done; with --fail-on: 1 any SUSPECT, 2 any INCONCLUSIVE, 3 any bad file; 4 model error."""
    from genuine.infer.inspector import Inspector
    from genuine.infer.keypoints import RectifyError
    from genuine.infer.references import ReferenceError
    from genuine.infer.runtime import ModelError, weak_model_warning

    if why := usage_error(args):
        print(f"genuine scan: {why}", file=sys.stderr)
        return 2
    try:
        insp = Inspector(args.model, threads=args.threads, references=args.references,
                         templates=args.templates)
    except (ModelError, ReferenceError, RectifyError) as e:
        print(f"genuine scan: {e}", file=sys.stderr)
        return 4
    if warning := weak_model_warning(insp.meta):  # also in summary.json and on top of report.html
        print(f"genuine scan: {warning}", file=sys.stderr)
    fail_on = _fail_on(args)
    run_dir = Path(args.out)
    run_dir.mkdir(parents=True, exist_ok=True)
    try:
        lock = lock_run(run_dir)   # held until the reports are written too
    except RunLocked as e:
        print(f"genuine scan: {e}", file=sys.stderr)
        return 2
    with lock:
        return _scan_and_report(args, insp, run_dir, fail_on, warning)


def _fail_on(args) -> list[str]:
    return [f.strip() for f in (args.fail_on or "").split(",") if f.strip()]


def usage_error(args) -> str | None:
    """What is wrong with a scan's command line, found before any work: exit 2 like argparse's own errors."""
    bad = [f for f in _fail_on(args) if f not in FAIL_CODES]
    if bad:
        return f"--fail-on {','.join(bad)}: choose from {', '.join(FAIL_CODES)}"
    if Path(args.out).exists() and not Path(args.out).is_dir():
        return f"--out {args.out}: is a file; a scan writes a run folder"
    for src in args.sources:
        if src.startswith("@"):
            try:
                Path(src[1:]).read_bytes().decode("utf-8")
            except OSError as e:
                return f"{src}: cannot read the list ({e.strerror or e})"
            except UnicodeDecodeError as e:
                return f"{src}: the list is not UTF-8 text (byte {e.start}); write one path per line in UTF-8"
    return None


def _scan_and_report(args, insp, run_dir: Path, fail_on: list[str], warning: str | None) -> int:
    from genuine.infer.scan_outputs import write_outputs

    if args.engine == "ray":
        from genuine.infer.scan_ray import scan_ray

        run = scan_ray(insp, args, run_dir)
    else:
        run = scan(insp, args.sources, run_dir, args.workers, args.batch, locked=True)
    summary = write_outputs(run_dir, Journal(run_dir / "results.jsonl").close_and_records(), {
        "model": str(args.model), "model_sha256": insp.model.sha256, "model_warning": warning,
        "sources": list(args.sources),
        "thresholds": insp.meta["thresholds"], "validation": validation_text(insp.meta),
        "elapsed_s": round(run["seconds"], 2), "photos_per_s": round(run["new"] / max(run["seconds"], 1e-9), 2),
        "this_run": run})
    c = summary["counts"]
    print(f"scan: {summary['total_photos']} photos ({summary['unique_photos']} unique, {summary['duplicates']} "
          f"duplicate paths): " + ", ".join(f"{v} {c.get(v, 0)}" for v in (GENUINE, SUSPECT, INCONCLUSIVE, ERROR))
          + f"; {run['already_done']} already done, {run['new']} new records at {summary['photos_per_s']:.1f}/s")
    print(f"Results saved to {printable(str(run_dir))} (results.csv, summary.json, report.html)")
    codes = [FAIL_CODES[f][1] for f in fail_on if c.get(FAIL_CODES[f][0])]
    return min(codes) if codes else 0
