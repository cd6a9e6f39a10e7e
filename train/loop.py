"""The training loop every trainer shares (the comparator's frozen and end-to-end modes, the whole-photo model):
defaults filled in once, the epoch loop with early stopping and exact resume, the calibrated checkpoint, the
versions recorded. The losses and epoch seeds they share are train/losses.py.

    args = with_defaults(args, {"epochs": 40, "patience": 8})     # the library's own defaults, not the CLI's
    history = fit(net, opt, sched, meta, out_dir, args, resume, run_epoch, val_metrics, describe)
    save_calibrated(out_dir, ckpt, temperature, method, operating_point, val_metrics, history, data, "")
"""
from __future__ import annotations

import copy
import json
import sys
import time
from pathlib import Path

import torch

from genuine.infer.contract import weak_model_warning
from genuine.train import checkpoint


def with_defaults(args, defaults: dict):
    """A copy of args whose unset (None) or missing options take this trainer's defaults: the library is right
    when called without the CLI, and the CLI does not patch its arguments per architecture."""
    args = copy.copy(args)
    for k, v in defaults.items():
        if getattr(args, k, None) is None:
            setattr(args, k, v)
    return args


def versions() -> dict:
    import albumentations
    import timm
    import torchvision

    from genuine import __version__

    return {"genuine": __version__, "torch": torch.__version__, "torchvision": torchvision.__version__,
            "timm": timm.__version__, "albumentations": albumentations.__version__}


def _log(out_dir: Path, row: dict) -> None:
    with open(out_dir / "log.jsonl", "a") as fh:
        fh.write(json.dumps(row) + "\n")


def fit(net, opt, sched, meta: dict, out_dir: Path, args, resume, run_epoch, val_metrics, describe,
        main: bool = True) -> list[dict]:
    """The epoch loop every trainer shares: continue a resume state, train (run_epoch(e) -> row), validate
    (val_metrics() -> binary_metrics), early-stop on val AUROC and say so, write best.pt and last.pt atomically
    (only the main process under torchrun: every process takes the same decisions from the same val metrics).
    Returns the history."""
    start, best, history, stale = 0, {"auroc": -1.0, "epoch": -1}, [], 0
    if resume is not None:
        net.load_state_dict(resume["model"])
        opt.load_state_dict(resume["optimizer"])
        sched.load_state_dict(resume["scheduler"])
        start, best, history, stale = resume["epoch"] + 1, resume["best"], resume["history"], resume["stale"]
        print(f"resuming after epoch {start} (best val AUROC {best['auroc']:.4f} at epoch {best['epoch'] + 1})",
              file=sys.stderr)
    out_dir.mkdir(parents=True, exist_ok=True)
    for epoch in range(start, args.epochs):
        if stale >= args.patience:
            print(f"stopped at epoch {epoch}: no val AUROC gain for {stale} epochs; best {best['auroc']:.4f} at "
                  f"epoch {best['epoch'] + 1}", file=sys.stderr)
            break
        t0 = time.perf_counter()
        row = {"epoch": epoch + 1, **run_epoch(epoch)}
        m = val_metrics()
        row.update({"val_auroc": m["auroc"], "val_accuracy": m["accuracy"], "lr": opt.param_groups[0]["lr"],
                    "seconds": round(time.perf_counter() - t0, 2)})
        improved = (m["auroc"] or 0.0) > best["auroc"] + 1e-6
        best, stale = ({"auroc": m["auroc"] or 0.0, "epoch": epoch}, 0) if improved else (best, stale + 1)
        history.append(row)
        if not main:
            continue
        _log(out_dir, row)
        print(f"epoch {epoch + 1}/{args.epochs}  loss {row['train_loss']:.4f}  val AUROC {m['auroc']:.4f}  "
              f"{describe(row)}{'  *best' if improved else ''}", file=sys.stderr)
        if improved:
            checkpoint.save(out_dir / "best.pt", {"model": net.state_dict(), "meta": {**meta, "epoch": epoch + 1}})
        checkpoint.save(out_dir / "last.pt", {"model": net.state_dict(), "optimizer": opt.state_dict(),
                                              "scheduler": sched.state_dict(), "epoch": epoch, "best": best,
                                              "history": history, "stale": stale, "meta": meta})
    return history


def save_calibrated(out_dir: Path, ckpt: dict, temp: float, method: str, op: dict, val: dict, history: list,
                    data, what: str) -> int:
    """Store calibration, thresholds and val metrics in best.pt; say what was measured and what comes next."""
    ckpt["meta"].update({"calibration": {"temperature": temp, "method": method},
                         "thresholds": op, "metrics": {"val": val}, "history": history,
                         "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
    checkpoint.save(out_dir / "best.pt", ckpt)
    print(f"val (calibrated, T={temp:.3f}{what}): AUROC {val['auroc']:.4f}  TPR@1%FPR {val['tpr_at_fpr_1pct']:.3f}  "
          f"ECE {val['ece']:.4f} (was {val['uncalibrated_ece']:.4f})  coverage {op['coverage']:.3f}")
    if warning := weak_model_warning(ckpt["meta"]):
        print(f"WARNING: {warning}", file=sys.stderr)
    print(f"Results saved to {out_dir / 'best.pt'} (log: {out_dir / 'log.jsonl'})")
    print(f"Next: genuine evaluate {out_dir / 'best.pt'} {data} --split test")
    return 0
