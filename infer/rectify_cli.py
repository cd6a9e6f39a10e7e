"""`genuine rectify PHOTO... --templates ROOT_OR_DB`: which product, where, and the face in the template's frame.

Brand trainers use it to check that a template works; everyone uses it to debug an inspection.

    genuine rectify IMG_0001.jpg --templates datasets/synthpack --out runs/faces
    genuine rectify case42.zip --templates refs.db --json > rectify.jsonl

One line per photo (JSON with --json). Exit codes: 0 every photo rectified, 1 any refused (package not found,
not covered, too small, cut off), 2 bad arguments or templates, 3 a photo could not be read.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import cv2

from genuine.infer import quality
from genuine.infer.photo import PhotoError, load_photo, printable
from genuine.infer.rectify import RectifyError, rectify
from genuine.infer.references import ReferenceError
from genuine.infer.sources import entries, looks_like_photo, read
from genuine.infer.templates import load_templates

REFUSED, USAGE, PHOTO_ERROR = 1, 2, 3


def _face_name(key: str, k: int, used: set) -> str:
    stem = Path(key.replace("!", "/")).stem or "photo"
    name = f"{stem}.png" if stem not in used else f"{stem}-{k}.png"   # two photos may share a name
    used.add(stem)
    return name


def _error(args, row: dict, kind: str, reason: str) -> int:
    """Report a photo that could not be rectified (JSON on stdout, or a line on stderr); its exit code."""
    row.update({"product": None, "ok": False, "error": reason, "error_kind": kind})
    print(json.dumps(row) if args.json else f"{row['path']}: ERROR {reason}", file=sys.stdout if args.json else sys.stderr)
    return PHOTO_ERROR


def main(args) -> int:
    cv2.setNumThreads(args.threads)
    try:
        templates = load_templates(args.templates, product=args.product)
    except (RectifyError, ReferenceError, PhotoError, OSError) as e:
        print(f"genuine rectify: {e}", file=sys.stderr)
        return USAGE
    out = Path(args.out) if args.out else None
    if out:
        out.mkdir(parents=True, exist_ok=True)
    face_side = args.face_side or None
    codes, used, t0 = [], set(), time.perf_counter()
    for k, e in enumerate(entries(args.photos)):
        if not e.refused and not looks_like_photo(e):
            continue
        row = {"path": e.key}
        try:
            if e.refused:
                raise PhotoError(e.key, e.refused_kind, e.refused)
            img = load_photo(read(e))
        except (OSError, PhotoError) as err:
            codes.append(_error(args, row, getattr(err, "kind", "unreadable"), getattr(err, "reason", str(err))))
            continue
        try:
            r = rectify(img, templates, face_side=face_side)
        except MemoryError:   # the full decode fitted, its working copies did not (a 3 GB handheld, 200 MP)
            codes.append(_error(args, row, "too_large",
                                f"not enough memory to rectify {img.width}x{img.height} at full resolution"))
            continue
        codes.append(0 if r.ok else REFUSED)
        row.update(r.to_dict())
        row["photo_size"] = [img.width, img.height]
        if r.face is not None:
            # no model here: the density is the photo's pixels per pixel of the face written
            row["face_quality"] = quality.assess_face(r.face, r.scale * r.template.size[0] / r.face.shape[1]).to_dict()
        if out is not None and r.face is not None:
            face = out / _face_name(e.key, k, used)
            cv2.imwrite(str(face), cv2.cvtColor(r.face, cv2.COLOR_RGB2BGR))
            row["face"] = str(face)
        if args.json:
            print(json.dumps(row))
        elif r.ok:
            print(f"{e.key}: {r.product}  {r.inliers} inliers  quality {r.quality:.2f}  "
                  f"{r.scale:.2f} photo px per template px  {1000 * r.seconds:.0f} ms"
                  + (f"  -> {printable(row['face'])}" if "face" in row else ""))
        else:
            print(f"{e.key}: REFUSED ({r.reason_code}) {r.reason}")
    if not codes:
        print(f"genuine rectify: no photos in {' '.join(args.photos)}", file=sys.stderr)
        return USAGE
    done = sum(c == 0 for c in codes)
    print(f"rectified {done} of {len(codes)} photo(s) against {len(templates)} template(s) of "
          f"{len(templates.products)} product(s) in {time.perf_counter() - t0:.1f} s"
          + (f"; faces saved to {printable(str(out))}" if out else ""), file=sys.stderr)
    errors = [c for c in codes if c == PHOTO_ERROR]
    return PHOTO_ERROR if errors else max(codes)
