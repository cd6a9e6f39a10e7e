"""Templates from every source: artwork files, dataset roots, image folders, the reference store.

    ts = load_templates("datasets/synthpack")        # <product>/template.png, as genuine synth writes it
    ts = load_templates("iconic/")                    # a folder of images: product = file stem
    ts = load_templates("refs.db", product="acme-tea")  # the reference store's templates table
    ts = load_templates("acme-tea.png")               # one image: product = stem (or `product`)

Templates built from photos of genuine units: infer/template_photos.py. Every image is decoded by
infer.photo.load_photo. Torch-free (OpenCV + numpy).
"""
from __future__ import annotations

import hashlib
import io
import sqlite3
import time
from pathlib import Path

import numpy as np
from PIL import Image

from genuine.infer.errors import UsageError
from genuine.infer.keypoints import KP_VERSION, SIFT_V1, RectifyError, Template, TemplateSet, root_sift
from genuine.infer.photo import PhotoError, is_photo_path, load_photo

MAX_TEMPLATE_SIDE = 2048  # 2x rectify.FACE_SIDE: sharp faces without 30 MB artwork blobs in the store
TEMPLATE_NAMES = ("template.png", "template.jpg", "template.jpeg")  # in <product>/ of a dataset root
SQLITE_MAGIC = b"SQLite format 3\x00"

TEMPLATES_SCHEMA = """
CREATE TABLE IF NOT EXISTS templates (
    id INTEGER PRIMARY KEY,
    product TEXT NOT NULL,
    sha256 TEXT NOT NULL UNIQUE,
    image BLOB NOT NULL,
    width INTEGER NOT NULL,
    height INTEGER NOT NULL,
    keypoints BLOB NOT NULL,
    descriptors BLOB NOT NULL,
    kp_version TEXT NOT NULL,
    source TEXT NOT NULL DEFAULT '',
    kind TEXT NOT NULL CHECK (kind IN ('artwork', 'photos')),
    added_at TEXT NOT NULL,
    added_by TEXT NOT NULL,
    note TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS templates_product ON templates (product);
"""
# Identification views: photos of a product (a shelf photo, another edition) that name it, never inspected against.
# Same columns; kept apart so that stores made before views keep their templates table as it was.
VIEWS_SCHEMA = (TEMPLATES_SCHEMA.replace("templates", "views").replace("kind IN ('artwork', 'photos')", "kind = 'view'"))
TEMPLATES_SCHEMA += VIEWS_SCHEMA
TEMPLATE_COLUMNS = ("product, sha256, image, width, height, keypoints, descriptors, kp_version, source, kind, "
                    "added_at, added_by, note")


# -- images ----------------------------------------------------------------------------------------
def template_image(src, name: str | None = None) -> np.ndarray:
    """(h, w, 3) uint8 RGB of a template source (path, bytes, PIL, array), long side capped at MAX_TEMPLATE_SIDE.

    Every source goes through here, so a file and the same file stored in a .db give the same template."""
    try:
        img = load_photo(src)
    except PhotoError as e:
        raise RectifyError(f"template {name or e.source}: {e.reason}") from None
    if max(img.size) > MAX_TEMPLATE_SIDE:
        img = img.copy()
        img.thumbnail((MAX_TEMPLATE_SIDE, MAX_TEMPLATE_SIDE), Image.Resampling.LANCZOS)
    return np.ascontiguousarray(crop_margin(np.asarray(img)))


def crop_margin(rgb: np.ndarray, tol: int = 16, keep: int = 2) -> np.ndarray:
    """Cut a uniform margin (a catalogue image's white page, an artwork's bleed-free border) down to `keep` px.

    The margin is not part of the package: left in, it projects outside a close-up photo (refused as 'cut') and
    its flat colour is compared with whatever lies behind the package. Only an image whose four borders share
    one colour is cropped, and cropping again changes nothing."""
    border = np.concatenate([rgb[0], rgb[-1], rgb[:, 0], rgb[:, -1]]).astype(np.int16)
    bg = np.median(border, axis=0)
    if np.mean(np.abs(border - bg).max(axis=1) > tol) > 0.02:
        return rgb                         # the design runs to the edge: nothing to cut
    ys, xs = np.nonzero(np.abs(rgb.astype(np.int16) - bg).max(axis=2) > tol)
    if len(xs) == 0:
        return rgb
    h, w = rgb.shape[:2]
    x0, x1 = max(0, xs.min() - keep), min(w, xs.max() + 1 + keep)
    y0, y1 = max(0, ys.min() - keep), min(h, ys.max() + 1 + keep)
    return rgb[y0:y1, x0:x1]


def image_sha256(rgb: np.ndarray) -> str:
    """Of the pixels (and size), not of a file: the same picture as PNG or re-encoded is one template."""
    h, w = rgb.shape[:2]
    return hashlib.sha256(f"{w}x{h}:".encode() + np.ascontiguousarray(rgb).tobytes()).hexdigest()


def _png(rgb: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "PNG", compress_level=6)  # lossless: the stored template is the template
    return buf.getvalue()


# -- the store's rows ------------------------------------------------------------------------------
def template_record(t: Template, kind: str, note: str, added_by: str) -> tuple:
    """A templates-table row (TEMPLATE_COLUMNS order) for Template t."""
    if kind not in ("artwork", "photos", "view"):
        raise UsageError(f"template kind must be artwork, photos or view, not {kind!r}")
    w, h = t.size
    return (t.product, image_sha256(t.image), _png(t.image), w, h, t.keypoints.astype(np.float32).tobytes(),
            t.descriptors.astype(np.float32).tobytes(), KP_VERSION, t.source, kind,
            time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), added_by, note)


def template_from_record(product: str, image: bytes, keypoints: bytes, descriptors: bytes, kp_version: str,
                         source: str) -> tuple[Template, bool]:
    """(Template, changed): keypoints are recomputed when they were made by another KP_VERSION, except plain SIFT
    descriptors (SIFT_V1), which become RootSIFT in place: the same keypoints, so a view keeps only its package's."""
    rgb = np.asarray(load_photo(image))
    if kp_version not in (KP_VERSION, SIFT_V1):
        return Template.from_image(product, rgb, source), True
    kp = np.frombuffer(keypoints, np.float32).reshape(-1, 2).copy()
    desc = np.frombuffer(descriptors, np.float32).reshape(-1, 128).copy()
    if kp_version == SIFT_V1:
        desc = root_sift(desc)
    return Template(product, np.ascontiguousarray(rgb), kp, desc, source), kp_version != KP_VERSION


def store_template(conn, product: str, image, source: str, kind: str, note: str, added_by: str) -> dict:
    """Insert a template into a reference store's templates table (ReferenceDB.add_template).

    image: a path, bytes, PIL image, array or a ready Template. Returns {"added": bool, "template": Template,
    "sha256", "existing": the product already holding this image, or None}."""
    if isinstance(image, Template):
        t = Template(product, image.image, image.keypoints, image.descriptors, source or image.source, kind == "view")
    else:
        name = source or (str(image) if isinstance(image, (str, Path)) else "")
        t = Template.from_image(product, template_image(image, name or None), name)
    row = template_record(t, kind, note, added_by)
    table = "views" if kind == "view" else "templates"
    with conn:
        conn.execute("BEGIN IMMEDIATE")
        old = conn.execute(f"SELECT product FROM {table} WHERE sha256 = ?", (row[1],)).fetchone()
        if not old:
            conn.execute(f"INSERT INTO {table} ({TEMPLATE_COLUMNS}) VALUES ({', '.join('?' * len(row))})", row)
    return {"added": not old, "template": t, "sha256": row[1], "existing": old[0] if old else None}


def stored_templates(conn, product: str | None = None, views: bool = True) -> list[Template]:
    """A reference store's templates (of `product`), then its identification views, keypoints recomputed where
    another KP_VERSION made them (a view's then cover its whole photo again, background included: add it again;
    plain SIFT descriptors are upgraded in place and keep the view's keypoints)."""
    cond, args = ("WHERE product = ?", (product,)) if product else ("", ())
    out = []
    for table in ("templates", "views") if views else ("templates",):
        rows = conn.execute(f"SELECT id, product, image, keypoints, descriptors, kp_version, source FROM {table} "
                            f"{cond} ORDER BY product, id", args).fetchall()
        stale = []
        for rid, *rec in rows:
            t, recomputed = template_from_record(*rec)
            t.view = table == "views"
            out.append(t)
            if recomputed:
                stale.append((t.keypoints.tobytes(), t.descriptors.tobytes(), KP_VERSION, rid))
        if stale:  # best effort: a read-only store just recomputes them on every load
            try:
                with conn:
                    conn.executemany(f"UPDATE {table} SET keypoints = ?, descriptors = ?, kp_version = ? WHERE id = ?",
                                     stale)
            except sqlite3.OperationalError:
                pass
    return out


# -- one loader for every source -------------------------------------------------------------------
def _is_sqlite(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(16) == SQLITE_MAGIC


def template_from_file(path, product: str) -> Template:
    """A template from an image file (artwork, catalogue image); RectifyError names the file and why not."""
    return Template.from_image(product, template_image(path, str(path)), str(path))


def _store_templates(path: Path, product: str | None) -> list[Template]:
    """A reference store's templates and views, read here rather than through infer.references.ReferenceDB (which
    imports this module): the tables are created when a store predates them, as ReferenceDB does."""
    try:
        conn = sqlite3.connect(path, timeout=30)
        try:
            conn.executescript(TEMPLATES_SCHEMA)
            return stored_templates(conn, product)
        finally:
            conn.close()
    except sqlite3.DatabaseError as e:
        raise RectifyError(f"{path}: not a reference store ({e})") from None


def load_templates(source, product: str | None = None) -> TemplateSet:
    """Templates from a dataset root (<product>/template.png), a folder of images (product = file stem), a
    reference store (.db) or one image file (product = `product`, else its stem). `product` keeps only that
    product's templates. Raises RectifyError naming the path and why."""
    path = Path(source)
    if not path.exists():
        raise RectifyError(f"{path}: no such file or folder (expected a dataset root, an image folder, a "
                           f"reference store .db or an image)")
    if path.is_file() and _is_sqlite(path):
        ts = _store_templates(path, product)
        if not ts:
            what = f"no template for {product!r}" if product else "no templates"
            raise RectifyError(f"{path}: reference store holds {what}; add one with genuine references add "
                               f"--db {path} --product NAME --template IMAGE")
        return TemplateSet(ts)
    if path.is_file():
        if not is_photo_path(path):
            raise RectifyError(f"{path}: neither an image nor a reference store (.db)")
        return TemplateSet([template_from_file(path, product or path.stem)])
    # A dataset root: <product>/template*.png|jpg; front/back faces as template-back.png and the like.
    found = [(d.name, f) for d in sorted(p for p in path.iterdir() if p.is_dir()) for f in sorted(d.iterdir())
             if f.is_file() and f.suffix.lower() in (".png", ".jpg", ".jpeg")
             and (f.name.lower() in TEMPLATE_NAMES or f.stem.lower().startswith(("template-", "template_")))]
    kind = "dataset root (<product>/template.png)"
    if not found:  # a folder of images named after their products (catalogue images)
        found = [(f.stem, f) for f in sorted(path.iterdir()) if f.is_file() and is_photo_path(f)]
        kind = "image folder (<product>.jpg)"
    if not found:
        raise RectifyError(f"{path}: no templates: neither <product>/template.png (a dataset root written by "
                           f"genuine synth) nor images named after their products")
    chosen = [(p, f) for p, f in found if product is None or p == product]
    if not chosen:
        raise RectifyError(f"{path}: {kind} has no template for {product!r}; it has: "
                           f"{', '.join(sorted({p for p, _ in found}))}")
    return TemplateSet([template_from_file(f, p) for p, f in chosen])
