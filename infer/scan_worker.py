"""The scan's worker processes: read, hash, decode and (comparator models) rectify and score genuine variation.

    setup = WorkerSetup.of(inspector)                        # picklable: a process pool's or a Ray actor's
    with ctx.Pool(workers, setup.start) as pool:             # infer/scan.py
        for item in pool.imap_unordered(decode, entries): ...   # Item: an error, a photo's input or a face

Every failure becomes data (an Item with its error kind and reason), never an exception: one strange file must not
stop a run of 10^6. The costly per-photo work (decode, rectification, the genuine-variation score) runs here, in
parallel; the main process only batches the ONNX model (infer/judge.py) and writes the journal. A face carries the
key of the template it was aligned to, so whoever judges it compares it with that template, whatever order its
own copy of the store lists them in.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from genuine.infer.judge import Face
from genuine.infer.model_input import face_model_input, photo_input
from genuine.infer.photo import PhotoError
from genuine.infer.quality import Quality
from genuine.infer.sources import Entry, looks_like_photo, read


@dataclass
class Item:
    """One listed entry after the worker: an error, a whole-photo model's input, or a comparator's face (or the
    rectification that refused it)."""
    entry: Entry
    sha256: str | None = None
    error_kind: str | None = None
    error: str | None = None
    x: np.ndarray | None = None          # whole-photo models: the letterboxed input
    quality: Quality | None = None       # whole-photo models: measured on x
    photo_size: tuple[int, int] | None = None
    rect: dict | None = None             # comparator models: infer.rectify.Rectified.to_dict()
    face: Face | None = None             # comparator models: the aligned face, when rectified

    @property
    def failed(self) -> bool:
        return self.error is not None


@dataclass(frozen=True)
class WorkerSetup:
    """What a worker needs from an Inspector, picklable for a process pool or a Ray actor."""
    size: int                                # whole-photo models: the input side
    limits: dict | None                      # the model's quality limits
    templates: object = None                 # comparator models: the TemplateSet photos are rectified onto
    face_size: tuple[int, int] | None = None
    store: str | None = None                 # comparator models that fuse: the store's absolute path
    zones: dict | None = None                # comparator models: {template key: zones already learnt} (infer/zones.py)

    @classmethod
    def of(cls, insp) -> "WorkerSetup":
        if not insp.model.is_comparator:
            return cls(insp.size, insp.meta.get("quality"))
        judge = insp.judge
        fused = judge.fusion and judge.variation and judge.store is not None
        # The zones already learnt travel to the workers; a template without them is learnt once by the judge in
        # this process when a photo of it first comes (never by each worker, never a whole store up front).
        zones = {t.key: z for t in judge.templates.templates if not t.view
                 if (z := judge.zones_of(t.key, learning=False)) is not None}
        return cls(insp.size, insp.meta.get("quality"), judge.templates, tuple(insp.model.face_size),
                   os.path.abspath(judge.store.path) if fused else None, zones)

    def start(self) -> None:
        """Pool initializer: this process's state, loaded once."""
        global _setup, _variation
        _setup = self
        if self.templates is not None:
            import cv2

            cv2.setNumThreads(1)  # one photo per process: OpenCV's own threads would only contend
        if self.store is not None:     # each worker scores its own faces: the main process only batches the model
            from genuine.infer.references import ReferenceDB
            from genuine.infer.variation_store import VariationModels

            _variation = VariationModels(ReferenceDB(self.store).conn, self.face_size)


_setup: WorkerSetup | None = None
_variation = None          # comparator models with a fusion: the store's genuine-variation models, per worker


def _rectified(item: Item, data: bytes) -> Item:
    """Worker, comparator models: rectify; the face's model input, its quality and its genuine variation."""
    from genuine.infer.rectify import rectify_photo

    from genuine.infer.zones import SHARP_SIDE, check

    r, _ = rectify_photo(data, _setup.templates, _setup.face_size, sharp_side=SHARP_SIDE)
    item.rect = r.to_dict()
    if r.ok:
        x, q = face_model_input(r.face, r.density, _setup.face_size, _setup.limits)
        m = _variation.get((r.product, r.template.key)) if _variation is not None else None
        variation = None
        if m is not None:
            from genuine.infer.variation import evidence

            variation = evidence(m, x)
        zones = (_setup.zones or {}).get(r.template.key)
        # Zones not learnt yet: the sharp face goes to the judge, which learns them once and checks it there.
        findings = check(r.sharp, zones) if zones is not None else None
        item.face = Face(item.entry.key, x, q, item.rect, r.template.key, variation, variation_done=True,
                         sharp=None if zones is not None else r.sharp, findings=findings)
    return item


def decode(e: Entry) -> Item:
    """Worker: bytes -> sha256 -> photo -> model input (or aligned face) and quality; errors become data."""
    item = Item(e)
    if e.refused:
        item.error_kind, item.error = e.refused_kind, e.refused
        return item
    if not looks_like_photo(e):
        item.error_kind, item.error = "skipped", f"not a photo file ({Path(e.member or e.path).suffix or 'no suffix'})"
        return item
    try:
        data = read(e)
    except PhotoError as err:
        item.error_kind, item.error = err.kind, err.reason
        return item
    except Exception as err:  # one strange entry must never stop a run of 10^6
        item.error_kind, item.error = "unreadable", f"cannot read ({type(err).__name__}: {err})"
        return item
    item.sha256 = hashlib.sha256(data).hexdigest()
    try:
        if _setup.templates is not None:
            return _rectified(item, data)
        inp = photo_input(data, _setup.size, _setup.limits)
    except PhotoError as err:
        item.error_kind, item.error = err.kind, err.reason
        return item
    except Exception as err:  # one strange file must never stop a run of 10^6
        item.error_kind, item.error = "unreadable", f"cannot decode ({type(err).__name__}: {err})"
        return item
    # No separate thumbnail: the report's picture is cut from the model input when a photo is flagged.
    item.x, item.quality, item.photo_size = inp.x, inp.quality, inp.photo_size
    return item
