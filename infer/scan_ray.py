"""`genuine scan --engine ray`: the same scan as a Ray Data job, past one machine.

    genuine scan model.onnx /archive/case42 --templates refs.db --out runs/case42 --engine ray            # local Ray
    genuine scan model.onnx /nfs/case42 --templates /nfs/refs.db --out runs/case42 --engine ray --address auto

The pipeline is the local scan's, stage for stage: the driver lists the photos (folders, zips, path lists: the same
refusals) and reads the run folder's journal first, so only unfinished photos are sent; `Decode` actors read, hash,
decode and rectify them and score genuine variation (infer/scan_worker.py, their templates and variation models
loaded once per actor); `Judge` actors hold one ONNX session each and score batches (scan.score_batch); the driver
appends every record to the same RUN_DIR/results.jsonl as it arrives and writes the same reports. A killed driver
resumes like a killed local scan; a lost worker's task is retried by Ray (actors restart). On a cluster the sources,
the model and the templates must be at the same paths on every node (a shared filesystem): workers read them there.
"""
from __future__ import annotations

import logging
import os
import pickle
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from genuine.infer.errors import UsageError
from genuine.infer.progress import Progress
from genuine.infer.scan_batch import Scanner, listing, score_batch
from genuine.infer.scan_worker import WorkerSetup
from genuine.infer.sources import Entry

EXTRA_HINT = "genuine scan --engine ray needs the 'ray' extra: pip install 'genuine[ray]' (from a clone: pip " \
             "install -e '.[ray]')"


KILL_ONCE = "GENUINE_TEST_KILL_WORKER_ONCE"   # tests: path of a marker file; the first worker to miss it dies


class Decode:
    """Ray actor: a scan worker (read, hash, decode, rectify, variation score) with its state loaded once."""

    def __init__(self, setup: WorkerSetup):
        setup.start()

    def __call__(self, batch: dict) -> dict:
        from genuine.infer.scan_worker import decode

        if (marker := os.environ.get(KILL_ONCE)) and not os.path.exists(marker):
            Path(marker).touch()
            os._exit(1)          # fault injection for the tests: a worker lost mid-run, as a node going down
        keys = list(batch)
        items = [decode(Entry(**{k: _plain(batch[k][i]) for k in keys})) for i in range(len(batch[keys[0]]))]
        return {"item": np.array([pickle.dumps(it, protocol=5) for it in items], dtype=object)}


class Judge:
    """Ray actor: one Inspector (one ONNX session, the templates, the variation models) scoring batches."""

    def __init__(self, model: str, templates: str | None, references: str | None, threads: int):
        from genuine.infer.inspector import Inspector

        self.insp = Inspector(model, threads=threads, references=references, templates=templates)

    def __call__(self, batch: dict) -> dict:

        items = [pickle.loads(b) for b in batch["item"]]
        done = score_batch(self.insp, items)
        return {"record": np.array([pickle.dumps(d, protocol=5) for d in done], dtype=object)}


def _plain(v):
    """A value of a Ray Data numpy batch back to the Python type Entry holds."""
    if isinstance(v, np.generic):
        v = v.item()
    return None if v is None or (isinstance(v, float) and np.isnan(v)) else v   # Arrow gives None back as NaN


def _ray():
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise UsageError(EXTRA_HINT) from None
    return ray


def scan_ray(inspector, args, run_dir: Path, progress: bool = True) -> dict:
    """Score every photo of args.sources not yet in RUN_DIR's journal on Ray (the caller holds the run lock)."""

    ray = _ray()
    t0 = time.perf_counter()
    sc = Scanner(inspector, run_dir, args.batch)
    listed = listing(args.sources)
    todo = [e for e in listed if not sc.finished(e)]
    bar = Progress(len(todo), progress)
    try:
        if todo:
            _run(ray, inspector, args, todo, sc, bar)
    finally:
        sc.journal.close()
        bar.close()
    return {"listed": len(listed), "already_done": len(listed) - len(todo), "new": sc.new,
            "seconds": time.perf_counter() - t0, "engine": "ray"}


def _run(ray, insp, args, todo: list[Entry], sc, bar) -> None:
    import ray.data

    started = not ray.is_initialized()
    if started:
        kw = {"address": args.address} if args.address else {"num_cpus": os.cpu_count() or 1}
        ray.init(include_dashboard=False, log_to_driver=False, configure_logging=False, **kw)
    try:
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = ctx.enable_auto_log_stats = ctx.print_on_execution_start = False
        logging.getLogger("ray.data").setLevel(logging.WARNING)   # our own progress line says what happens
        cpus = int(ray.cluster_resources().get("CPU", 1))
        judges, actors = split_cpus(cpus, args.actors)
        setup = WorkerSetup.of(insp)
        # Absolute files (the keys stay as given, for the reports): an actor's working folder is not the driver's.
        rows = [{**asdict(e), "path": os.path.abspath(e.path)} for e in todo]
        ds = ray.data.from_items(rows, override_num_blocks=max(1, min(len(rows) // 8, 1000)))
        # Ray Data restarts a dead actor and retries its task (its default for actor pools; the worker-kill test
        # checks it): a photo is journalled once, when its record arrives here.
        ds = ds.map_batches(Decode, fn_constructor_args=(setup,), batch_size=4, concurrency=actors, num_cpus=1)
        ds = ds.map_batches(Judge, fn_constructor_args=(_source(args.model), _source(args.templates),
                                                        _source(args.references), args.threads),
                            batch_size=args.batch, concurrency=judges, num_cpus=1)
        for batch in ds.iter_batches(batch_size=None, batch_format="numpy"):
            for blob in batch["record"]:
                rec, thumb = pickle.loads(blob)
                sc.arrived(rec, thumb)
                bar.step()
    finally:
        if started:
            ray.shutdown()


def split_cpus(cpus: int, actors: int = 0) -> tuple[int, int]:
    """(model actors, decode actors) for a cluster of `cpus`: measured on 2 cores, a photo costs a decode actor
    about twice what it costs the model (85 ms against 45 ms, bench/scan_ray.py), so a third of the CPUs go to the
    model. `actors` (--actors) fixes the decode actors; the model keeps at least one."""
    judges = max(1, cpus // 3)
    return judges, actors or max(1, cpus - judges)


def _source(path: str | None) -> str | None:
    """Paths as every node sees them (absolute), since actors may run elsewhere than the driver."""
    return None if path is None else str(Path(path).resolve()) if Path(path).exists() else path
