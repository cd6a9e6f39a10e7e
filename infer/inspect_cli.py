"""`genuine inspect MODEL PHOTO...`: verdicts for an officer (colour on a terminal) or a machine (--json).

Exit codes: 0 all GENUINE, 1 any SUSPECT, 2 any INCONCLUSIVE (none SUSPECT),
3 a photo could not be read, 4 the model could not be loaded.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from genuine.infer.heatmap import overlay, overlay_face, overlay_photo, zone_boxes
from genuine.infer.keypoints import RectifyError
from genuine.infer.photo import PhotoError, load_photo, printable
from genuine.infer.references import ReferenceError
from genuine.infer.runtime import ModelError, weak_model_warning
from genuine.infer.verdict import GENUINE, INCONCLUSIVE, SUSPECT

EXIT = {GENUINE: 0, SUSPECT: 1, INCONCLUSIVE: 2}
PHOTO_ERROR, MODEL_ERROR, USAGE = 3, 4, 2
COLOUR = {GENUINE: "\033[1;32m", SUSPECT: "\033[1;31m", INCONCLUSIVE: "\033[1;33m"}


def _heatmap_path(base: str, k: int, n: int) -> Path:
    p = Path(base)
    return p if n == 1 else p.with_name(f"{p.stem}-{k}{p.suffix or '.png'}")


def _declared(args, insp) -> tuple[dict, str | None]:
    """(inspect's keyword arguments, or the reason --product cannot be used)."""
    if not args.product:
        return {}, None
    if not insp.model.is_comparator:
        return {}, "--product needs a comparator model (it names the template to align to)"
    if args.product not in insp.templates.products:
        return {}, (f"--product {printable(args.product)}: no template of it in "
                    f"{printable(str(args.templates or args.references))}; known: {', '.join(insp.templates.products)}")
    return {"product": args.product}, None


def _heatmaps(args, insp, r, path, k: int):
    """Write the heatmap PNG(s) of photo k: on the photo (through the homography) and on the face for a comparator;
    the path written, or None when it could not be (the verdict stands and is printed)."""
    hp = _heatmap_path(args.heatmap, k, len(args.photos))
    try:
        if r.face is not None:   # comparator: on the photo through the homography, and on the face
            boxes = zone_boxes(r.evidence)
            overlay_photo(load_photo(path), r.heatmap, r.H, (r.face.shape[1], r.face.shape[0]), boxes=boxes).save(hp)
            overlay_face(r.face, r.heatmap, boxes=boxes).save(hp.with_name(f"{hp.stem}-face{hp.suffix or '.png'}"))
        else:
            overlay(load_photo(path), r.heatmap, insp.size).save(hp)
    except (OSError, ValueError) as e:
        print(f"genuine inspect: {printable(path)}: heatmap not written to {hp} ({e})", file=sys.stderr)
        return None
    return hp


def main(args) -> int:
    from genuine.infer.inspector import Inspector  # onnxruntime import kept off `genuine --help`

    if args.heatmap and not Path(args.heatmap).resolve().parent.is_dir():
        print(f"genuine inspect: --heatmap {args.heatmap}: folder {Path(args.heatmap).parent} does not exist",
              file=sys.stderr)
        return USAGE
    try:
        insp = Inspector(args.model, threads=args.threads, references=args.references,
                         templates=args.templates)
    except (ModelError, ReferenceError, RectifyError) as e:
        print(f"genuine inspect: {e}", file=sys.stderr)
        return MODEL_ERROR
    if warning := weak_model_warning(insp.meta):
        print(f"genuine inspect: {warning}", file=sys.stderr)
    kw, why = _declared(args, insp)
    if why:
        print(f"genuine inspect: {why}", file=sys.stderr)
        return USAGE
    tty = sys.stdout.isatty() and not args.json
    codes = []
    for k, path in enumerate(args.photos):
        name = printable(path)
        try:
            r = insp.inspect(path, **kw)
        except PhotoError as e:
            codes.append(PHOTO_ERROR)
            if args.json:
                print(json.dumps({"source": name, "error": e.reason, "error_kind": e.kind,
                                  "model_sha256": insp.model.sha256}))
            else:
                print(f"{name}: ERROR {e.reason}", file=sys.stderr)
            continue
        codes.append(EXIT[r.verdict])
        hp = _heatmaps(args, insp, r, path, k) if args.heatmap and r.heatmap is not None else None
        if args.json:
            print(json.dumps({**r.to_dict(), **({"heatmap_png": str(hp)} if hp else {})}))
            continue
        v = f"{COLOUR[r.verdict]}{r.verdict}\033[0m" if tty else r.verdict
        prod = f"  product {r.product} ({r.product_confidence:.2f})" if r.product_confidence is not None else (
            f"  product {r.product}" if r.product else "")
        score = f"authenticity {r.authenticity:.3f}" if r.authenticity is not None else "not scored"
        print(f"{name}: {v}  {score}{prod}  {r.timing_ms['total']:.0f} ms")
        print(f"  {r.reason}")
        if hp:
            face = hp.with_name(f"{hp.stem}-face{hp.suffix or '.png'}").name
            print(f"  heatmap: {printable(str(hp))} (and {printable(face)}: on the package's own face)")
    errors = [c for c in codes if c >= PHOTO_ERROR]
    return max(errors) if errors else (1 if 1 in codes else max(codes, default=0))
