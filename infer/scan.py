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

import os
import sys
import time
from multiprocessing import get_context
from pathlib import Path

from genuine.infer.contract import validation_text
from genuine.infer.journal import Journal, RunLocked, lock_run  # noqa: F401 (Journal, RunLocked: the scan API)
from genuine.infer.photo import printable
from genuine.infer.progress import Progress
from genuine.infer.scan_batch import Scanner, listing
from genuine.infer.scan_worker import WorkerSetup, decode
from genuine.infer.verdict import ERROR, GENUINE, INCONCLUSIVE, SUSPECT


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
