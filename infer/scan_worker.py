"""The scan's worker processes: read, hash, decode and (comparator models) rectify and score genuine variation.

    with ctx.Pool(workers, _init_worker, init) as pool:   # infer/scan.py
        for item in pool.imap_unordered(decode, entries): ...

Every failure becomes data (an error item with its kind and reason), never an exception: one strange file must not
stop a run of 10^6. The costly per-photo work (decode, rectification, the genuine-variation score) runs here, in
parallel; the main process only batches the ONNX model and writes the journal.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

from genuine.infer.model_input import face_model_input, photo_input
from genuine.infer.photo import PhotoError
from genuine.infer.sources import Entry, looks_like_photo, read

_model_size = 0
_quality_limits: dict | None = None
_templates = None          # comparator models: the TemplateSet photos are rectified onto
_face_size: tuple[int, int] | None = None
_variation = None          # comparator models with a fusion: the store's genuine-variation models, per worker


def worker_args(insp) -> tuple:
    """What _init_worker needs from an Inspector, picklable for a process pool or a Ray actor: the model size and
    quality limits, and for a comparator its templates, face size and (when it fuses) the store's absolute path."""
    comparator = insp.model.is_comparator
    fused = comparator and insp.fusion and insp.variation
    return (insp.size, insp.meta.get("quality"), insp.templates if comparator else None,
            insp.model.face_size if comparator else None, os.path.abspath(insp._store.path) if fused else None)


def _init_worker(size: int, limits: dict | None, templates=None, face_size=None, store: str | None = None) -> None:
    global _model_size, _quality_limits, _templates, _face_size, _variation
    _model_size, _quality_limits, _templates, _face_size = size, limits, templates, face_size
    if templates is not None:
        import cv2

        cv2.setNumThreads(1)  # one photo per process: OpenCV's own threads would only contend
    if store is not None:     # each worker scores its own faces: the main process only batches the model
        from genuine.infer.references import ReferenceDB
        from genuine.infer.variation_store import VariationModels

        _variation = VariationModels(ReferenceDB(store).conn, face_size)


def _rectified(out: dict, data: bytes) -> dict:
    """Worker, comparator models: rectify; the face's model input, its quality and the template used."""
    from genuine.infer.rectify import rectify_photo

    r, _ = rectify_photo(data, _templates, _face_size)
    if not r.ok:
        return {**out, "rect": r.to_dict()}
    x, q = face_model_input(r.face, r.density, _face_size, _quality_limits)
    m = _variation.get((r.product, r.template.key)) if _variation is not None else None
    if m is not None:
        from genuine.infer.variation import evidence

        out["variation"] = evidence(m, x)
    return {**out, "rect": r.to_dict(), "x": x,
            "template": next(i for i, t in enumerate(_templates.templates) if t is r.template),
            "quality": q}


def decode(e: Entry) -> dict:
    """Worker: bytes -> sha256 -> photo -> model input, quality and a thumbnail; errors become data."""
    out = {"entry": e}
    if e.refused:
        return {**out, "error_kind": e.refused_kind, "error": e.refused}
    if not looks_like_photo(e):
        suffix = Path(e.member or e.path).suffix or "no suffix"
        return {**out, "error_kind": "skipped", "error": f"not a photo file ({suffix})"}
    try:
        data = read(e)
    except PhotoError as err:
        return {**out, "error_kind": err.kind, "error": err.reason}
    except Exception as err:  # one strange entry must never stop a run of 10^6
        return {**out, "error_kind": "unreadable", "error": f"cannot read ({type(err).__name__}: {err})"}
    out["sha256"] = hashlib.sha256(data).hexdigest()
    try:
        if _templates is not None:
            return _rectified(out, data)
        inp = photo_input(data, _model_size, _quality_limits)
    except PhotoError as err:
        return {**out, "error_kind": err.kind, "error": err.reason}
    except Exception as err:  # one strange file must never stop a run of 10^6
        return {**out, "error_kind": "unreadable", "error": f"cannot decode ({type(err).__name__}: {err})"}
    # No separate thumbnail: the report's picture is cut from the model input when a photo is flagged.
    return {**out, "x": inp.x, "quality": inp.quality, "photo_size": inp.photo_size}
