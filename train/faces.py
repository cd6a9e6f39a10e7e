"""Aligned faces of a dataset: every photo rectified into its product's template frame, once, then cached.

    ds = discover("datasets/synthpack")
    templates = load_templates(ds.root)                     # infer.templates: <root>/<product>/template.png
    faces = aligned_faces(ds.root, select(ds, "train"), templates, workers=0)
    f = faces["00-fiisfi"]; f.faces[f.ok], f.index, f.reasons   # (n, h, w, 3) uint8, positions in records

A labelled dataset knows each photo's product, so a photo is matched against its own product's template only
(rectify(..., product=record.product)). With a model's face_size the photo takes the inspector's own input path
(infer.rectify.rectify_photo: DCT-scaled decode, face at twice the input); without, the full-resolution decode at
face_side (the training-free baseline). The result of one call is cached per
product as an .npz under <root>/.cache/faces/ (or $GENUINE_CACHE/faces/), keyed by the photos (paths, sizes,
mtimes), the template's pixels, infer.rectify.KP_VERSION and the face size: a second call with the same photos
reads the file and rectifies nothing; a changed photo or template computes it again.
"""
from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from genuine.infer.atomic import atomic_write
from genuine.infer.keypoints import FACE_SIDE, KP_VERSION, Template, TemplateSet
from genuine.infer.photo import PhotoError, load_photo
from genuine.infer.progress import Progress
from genuine.infer.rectify import PAD, model_face_side, rectify, rectify_photo
from genuine.infer.zones import SHARP_SIDE, check as check_zones
from genuine.train.layout import Record

VERSION = "4"            # bump when the same inputs would give other faces (2: density, rectify_photo; 3: zones; 4: ECC)


@dataclass
class Faces:
    """One product's photos in its template's frame; rows follow `index` (positions in the records given)."""
    index: np.ndarray    # (n,) int
    faces: np.ndarray    # (n, h, w, 3) uint8; PAD grey where ok is False
    ok: np.ndarray       # (n,) bool
    reasons: list[str]   # rectify's reason_code (or "unreadable: ...") where not ok, "" where ok
    inliers: np.ndarray  # (n,) int
    seconds: np.ndarray  # (n,) float: rectify's own time per photo (decode excluded)
    density: np.ndarray  # (n,) float: photo pixels per model input pixel (0 without a face_size)
    zones: np.ndarray | None = None   # (n,) str: each photo's zone Findings as JSON (aligned_faces(zones=...))


def cache_dir(root) -> Path:
    env = os.environ.get("GENUINE_CACHE")
    return (Path(env) if env else Path(root) / ".cache") / "faces"


def _key(records: list[Record], t: Template, face_side, face_size, zones: dict | None = None) -> str:
    from genuine.infer import rectify as rect   # read at call time: bench and tests switch ECC and the start

    refine = rect.alignment()
    h = hashlib.sha256(f"{VERSION}\t{KP_VERSION}\t{refine}\t{t.product}\t{t.face_size(face_side)}\t{face_size}\n".encode())
    if zones is not None:
        h.update(json.dumps(zones, sort_keys=True).encode())
    h.update(hashlib.sha256(np.ascontiguousarray(t.image).tobytes() + str(t.image.shape).encode()).digest())
    for r in records:
        try:
            st = os.stat(r.path)
            h.update(f"{r.path}\t{st.st_size}\t{st.st_mtime_ns}\n".encode())
        except OSError:
            h.update(f"{r.path}\tmissing\n".encode())
    return h.hexdigest()[:32]


_TEMPLATES: TemplateSet | None = None


def _init(templates: TemplateSet) -> None:
    global _TEMPLATES
    cv2.setNumThreads(1)  # one photo per process: OpenCV's own threads would only contend
    _TEMPLATES = templates


def _one(job):
    path, product, face_side, face_size, zones = job
    try:
        if face_size is not None:
            r, _ = rectify_photo(path, _TEMPLATES, face_size, product=product, sharp_side=SHARP_SIDE if zones else 0)
        else:
            r = rectify(np.asarray(load_photo(path)), _TEMPLATES, product=product, face_side=face_side)
    except PhotoError as e:
        return None, f"unreadable: {e}", 0, 0.0, 0.0, ""
    found = json.dumps([f.to_dict() for f in check_zones(r.sharp, zones)]) if zones and r.ok else ""
    return (r.face if r.ok else None), ("" if r.ok else r.reason_code or "failed"), r.inliers, r.seconds, r.density, found


def _save(path: Path, **arrays) -> None:
    with atomic_write(path) as fh:
        np.savez(fh, **arrays)


def _run(jobs: list, templates: TemplateSet, workers: int, progress: bool) -> list:
    """Every job rectified (_one), in order, in spawn workers when there are several, with a progress line."""
    n = min(len(jobs), workers or os.cpu_count() or 1)
    bar = Progress(len(jobs), progress, label="rectify", unit="photos")
    if n <= 1:
        _init(templates)
        results = [_stepped(_one(j), bar) for j in jobs]
    else:
        # spawn, not fork: a fork of a process whose OpenCV threads hold a lock can hang in the child
        with multiprocessing.get_context("spawn").Pool(n, initializer=_init, initargs=(templates,)) as pool:
            results = [_stepped(r, bar) for r in pool.imap(_one, jobs, chunksize=max(1, min(16, len(jobs) // (4 * n))))]
    bar.close()
    return results


def _collect(results: list, idx: list, face_wh: tuple[int, int]) -> "Faces":
    """One product's Faces from its photos' results (face or None, reason, inliers, seconds, density)."""
    fw, fh = face_wh
    faces = np.full((len(idx), fh, fw, 3), PAD, np.uint8)
    ok, reasons, inliers, secs = np.zeros(len(idx), bool), [], np.zeros(len(idx), int), np.zeros(len(idx))
    density, zones = np.zeros(len(idx)), []
    for j, (face, reason, inliers[j], secs[j], density[j], found) in enumerate(results):
        if face is not None:
            faces[j], ok[j] = face, True
        reasons.append(reason)
        zones.append(found)
    return Faces(np.array(idx), faces, ok, reasons, inliers, secs, density, np.array(zones, dtype=str))


def _cache(f: Path, fc: "Faces") -> None:
    try:
        _save(f, faces=fc.faces, ok=fc.ok, reasons=np.array(fc.reasons, dtype=str), inliers=fc.inliers,
              seconds=fc.seconds, density=fc.density, zones=fc.zones)
    except OSError as e:  # a read-only dataset still evaluates, only slower next time
        print(f"warning: could not cache aligned faces in {f.parent}: {e}", file=sys.stderr)


def _stepped(result, bar):
    bar.step()
    return result


def aligned_faces(root, records: list[Record], templates: TemplateSet, face_side: int | None = FACE_SIDE,
                  workers: int = 0, cache: bool = True, face_size: tuple[int, int] | None = None,
                  progress: bool = True, zones: dict | None = None) -> dict[str, Faces]:
    """{product: Faces} for `records`, each photo rectified against its own product's template (a progress line on
    stderr while photos not in the cache are rectified).

    face_size: a comparator's input (W, H): the inspector's input path, faces at model_face_side(face_size).
    Photos of a product without a template are not ok ("not_covered"). workers=0: all cores; 1: in-process.
    zones: {product: infer.zones.learn's dict}: also check each face's zones on its sharp face (Faces.zones)."""
    if face_size is not None:
        face_size, face_side = (int(face_size[0]), int(face_size[1])), model_face_side(face_size)
    by_product: dict[str, list[int]] = {}
    for i, r in enumerate(records):
        by_product.setdefault(r.product, []).append(i)
    tmpl = {t.product: t for t in templates.templates}
    out, todo = {}, {}
    for product, idx in sorted(by_product.items()):
        t = tmpl.get(product)
        if t is None:
            out[product] = Faces(np.array(idx), np.full((len(idx), 1, 1, 3), PAD, np.uint8), np.zeros(len(idx), bool),
                                 ["not_covered"] * len(idx), np.zeros(len(idx), int), np.zeros(len(idx)),
                                 np.zeros(len(idx)))
            continue
        zp = (zones or {}).get(product)
        f = cache_dir(root) / f"{product}-{_key([records[i] for i in idx], t, face_side, face_size, zp)}.npz"
        if cache and f.exists():
            try:
                with np.load(f) as z:
                    out[product] = Faces(np.array(idx), z["faces"], z["ok"], [str(s) for s in z["reasons"]],
                                         z["inliers"], z["seconds"], z["density"], z["zones"])
                continue
            except (OSError, ValueError, KeyError):
                pass  # a damaged cache file is recomputed
        todo[product] = (idx, t, f)
    jobs = [(str(records[i].path), p, face_side, face_size, (zones or {}).get(p))
            for p, (idx, _, _) in todo.items() for i in idx]
    if jobs:
        results = _run(jobs, templates, workers, progress)
        k = 0
        for product, (idx, t, f) in todo.items():
            out[product] = _collect(results[k:k + len(idx)], idx, t.face_size(face_side))
            k += len(idx)
            if cache:
                _cache(f, out[product])
    return dict(sorted(out.items()))
