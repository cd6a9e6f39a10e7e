"""Checkpoints: plain dicts of tensors and JSON-able metadata, written atomically, loaded safely.

    save(path, {"model": net.state_dict(), "meta": meta, ...})
    ckpt = load(path)          # torch.load(weights_only=True): no pickle code ever runs
    net = build_from(ckpt)     # Comparator or GenuineNet with the checkpoint's weights, in eval mode
"""
from __future__ import annotations

import json
from pathlib import Path

import torch

from genuine.infer.atomic import atomic_write
from genuine.infer.contract import is_comparator
from genuine.infer.errors import GenuineError

FORMAT = "genuine-checkpoint/1"


class CheckpointError(GenuineError, ValueError):
    """Not a genuine checkpoint, or an unsafe/corrupt file; the message names the file."""


def save(path, state: dict) -> None:
    """Write atomically: a crash leaves the old checkpoint intact."""
    # Metadata as plain JSON types: numpy scalars or TorchVersion would not load with weights_only=True.
    state = {**state, "meta": json.loads(json.dumps(state["meta"], default=_plain))}
    with atomic_write(path) as fh:
        torch.save(state, fh)


def _plain(x):
    if hasattr(x, "item"):
        return x.item()
    if hasattr(x, "tolist"):
        return x.tolist()
    return str(x)


def resolve(path) -> Path:
    """A checkpoint file, or a run folder as users type it: its best.pt."""
    path = Path(path)
    if path.is_dir():
        if not (path / "best.pt").is_file():
            raise CheckpointError(f"{path}: a folder without best.pt; give a checkpoint file or a run folder written "
                                  f"by genuine train")
        return path / "best.pt"
    return path


def load(path) -> dict:
    path = resolve(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # unpickling refused, truncated zip, not a torch file at all
        raise CheckpointError(f"{path}: not a loadable genuine checkpoint ({type(e).__name__}: {e})") from None
    if not isinstance(ckpt, dict) or ckpt.get("meta", {}).get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a genuine checkpoint (no '{FORMAT}' metadata)")
    return ckpt


def build_from(ckpt: dict):
    """The checkpoint's network (a Comparator or a whole-photo GenuineNet) with its weights, in eval mode."""
    meta = ckpt["meta"]
    if is_comparator(meta):
        from genuine.train.comparator import build

        net = build(meta["comparator"])
        net.load_state_dict(ckpt["model"])
        return net.eval()
    from genuine.train.model import GenuineNet

    net = GenuineNet(meta["backbone"], n_products=max(1, len(meta["products"])))
    net.load_state_dict(ckpt["model"])
    return net.eval()
