"""Genuine photos of a product in the reference store, and the genuine-variation models fitted from them.

    genuine references add --db refs.db --product acme-tea --genuine-photos photos/acme-tea/

    report = add_genuine_photos(conn, "acme-tea", ["photos/acme-tea/"])   # aligned to the product's templates
    models = VariationModels(conn, (320, 208))    # .get((product, template key)): fitted on first use, cached

A comparator compares a photo with its product's template (artwork); it knows nothing of how genuine units of this
product vary (wear, the lot line, print tolerances). A few genuine photos give that: each is rectified onto the
product's template (infer.rectify.rectify_photo, the inspector's own path) and its face kept in the store; the
variation model (infer/variation.py) of a product is fitted from them at the model's input size the first time a
model asks, and cached in the store until the photos change. The inspector then fuses both scores (meta["fusion"]).
No model is needed to add the photos, and no retraining: the next inspection uses them.
"""
from __future__ import annotations

import getpass
import hashlib
import io
import os
import sqlite3
import time
from collections import OrderedDict

import numpy as np
from PIL import Image

from genuine.infer.errors import UsageError
from genuine.infer.keypoints import TemplateSet
from genuine.infer.photo import PhotoError
from genuine.infer.progress import Progress
from genuine.infer.preprocess import face_input
from genuine.infer.rectify import rectify_photo
from genuine.infer.sources import photo_bytes
from genuine.infer.templates import stored_templates
from genuine.infer.variation import MIN_PHOTOS, ProductModel, fit, from_bytes, reference_indices, to_bytes

MAX_IN_MEMORY = 64             # variation models held per process (about 6 MB each at 320x208); the rest reload
STORE_FACE_SIZE = (320, 320)   # faces are kept at model_face_side of this (640 px long side): any model up to 320 px

FACE_COLUMNS = "product, template, sha256, face, density, source, added_at, added_by"   # what export/import copy
VARIATION_SCHEMA = """
CREATE TABLE IF NOT EXISTS genuine_faces (
    id INTEGER PRIMARY KEY,
    product TEXT NOT NULL,
    template TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    face BLOB NOT NULL,
    density REAL NOT NULL,
    source TEXT NOT NULL DEFAULT '',
    added_at TEXT NOT NULL,
    added_by TEXT NOT NULL,
    UNIQUE (sha256, product)
);
CREATE TABLE IF NOT EXISTS variation_models (
    product TEXT NOT NULL,
    template TEXT NOT NULL,
    width INTEGER NOT NULL,
    height INTEGER NOT NULL,
    faces TEXT NOT NULL,
    model BLOB NOT NULL,
    fitted_at TEXT NOT NULL,
    PRIMARY KEY (product, template, width, height)
);
"""


def _png(face: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(face).save(buf, format="PNG", compress_level=6)
    return buf.getvalue()


def add_genuine_photos(conn, product: str, sources: list[str], added_by: str | None = None,
                       progress: bool = True) -> dict:
    """Rectify each photo onto the product's templates and keep its face. Photos that cannot be read or aligned are
    reported with the reason, the rest stored: {"added", "duplicates", "errors", "photos" (now held), "needed"}."""
    templates = stored_templates(conn, product)
    if not templates:
        raise UsageError(f"{product}: no template in this store; add its artwork first (--template IMAGE) so that "
                         f"genuine photos can be aligned to it")
    ts, who = TemplateSet(templates), added_by or getpass.getuser()
    report = {"added": 0, "duplicates": [], "errors": []}
    bar = Progress(None, progress, label=f"genuine photos of {product}", unit="photos")
    for e, data in photo_bytes(sources, report["errors"]):
        bar.step()
        sha = hashlib.sha256(data).hexdigest()
        if conn.execute("SELECT 1 FROM genuine_faces WHERE sha256 = ? AND product = ?", (sha, product)).fetchone():
            report["duplicates"].append(e.key)
            continue
        try:
            r, _ = rectify_photo(data, ts, STORE_FACE_SIZE, product=product)
        except (OSError, PhotoError) as err:
            report["errors"].append(f"{e.key}: {getattr(err, 'reason', err)}")
            continue
        if not r.ok:
            report["errors"].append(f"{e.key}: not aligned to {product}'s template ({r.reason})")
            continue
        with conn:
            conn.execute("INSERT OR IGNORE INTO genuine_faces (product, template, sha256, face, density, source, "
                         "added_at, added_by) VALUES (?,?,?,?,?,?,?,?)",
                         (product, r.template.key, sha, _png(r.face), float(r.density), e.key,
                          time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), who))
        report["added"] += 1
    bar.close()
    report["photos"] = genuine_photo_count(conn, product)
    report["needed"] = MIN_PHOTOS
    return report


def genuine_photo_count(conn, product: str | None = None) -> int:
    q, a = ("SELECT COUNT(*) FROM genuine_faces", ()) if product is None else \
        ("SELECT COUNT(*) FROM genuine_faces WHERE product = ?", (product,))
    return conn.execute(q, a).fetchone()[0]


def face_groups(conn) -> dict[tuple[str, str], list[str]]:
    """{(product, template key): sorted sha256 of its genuine faces}: what a variation model or a product's
    calibration (infer/product_calibration.py) is made from, and so what keys their caches."""
    groups: dict[tuple[str, str], list[str]] = {}
    for product, template, sha in conn.execute(
            "SELECT product, template, sha256 FROM genuine_faces ORDER BY product, template, sha256"):
        groups.setdefault((product, template), []).append(sha)
    return groups


def decode_face(blob: bytes, size) -> np.ndarray:
    """A stored face (PNG) at a model's input size (W, H): the comparator's own input path (face_input)."""
    return face_input(np.asarray(Image.open(io.BytesIO(blob)).convert("RGB")), (int(size[0]), int(size[1])))


def stored_faces(conn, product: str, template: str, size, which=None) -> np.ndarray:
    """(n, H, W, 3) uint8: the genuine faces of (product, template) in sha256 order at the model's input size, or
    only those at the indices which(n) of that order (callers holding the faces encoded decode only these)."""
    ids = [i for (i,) in conn.execute("SELECT id FROM genuine_faces WHERE product = ? AND template = ? "
                                      "ORDER BY sha256", (product, template))]
    pick = range(len(ids)) if which is None else which(len(ids))
    w, h = int(size[0]), int(size[1])
    out = [decode_face(conn.execute("SELECT face FROM genuine_faces WHERE id = ?", (ids[k],)).fetchone()[0], size)
           for k in pick]
    return np.stack(out) if out else np.zeros((0, h, w, 3), np.uint8)


class VariationModels:
    """{(product, template key): model} for every product and template with at least MIN_PHOTOS genuine faces, at
    face_size (W, H), each loaded or fitted when first asked for (a scan of one product fits one model, not the
    store's hundred). Fitted models are cached in the store, keyed by the faces behind them; a read-only store
    fits them again next time rather than failing."""

    def __init__(self, conn, face_size):
        self.conn, self.size = conn, (int(face_size[0]), int(face_size[1]))
        self.groups = {k: v for k, v in face_groups(conn).items() if len(v) >= MIN_PHOTOS}
        self._models: OrderedDict[tuple[str, str], ProductModel] = OrderedDict()

    def __len__(self) -> int:
        return len(self.groups)

    def get(self, key: tuple[str, str]) -> ProductModel | None:
        if key not in self.groups:
            return None
        if key in self._models:
            self._models.move_to_end(key)
        else:
            self._models[key] = self._load(*key)
            while len(self._models) > MAX_IN_MEMORY:   # a store of thousands of products: keep the recent ones
                self._models.popitem(last=False)
        return self._models[key]

    def _load(self, product: str, template: str) -> ProductModel:
        w, h = self.size
        digest = hashlib.sha256("".join(self.groups[(product, template)]).encode()).hexdigest()
        row = self.conn.execute("SELECT faces, model FROM variation_models WHERE product = ? AND template = ? AND "
                                "width = ? AND height = ?", (product, template, w, h)).fetchone()
        if row is not None and row[0] == digest:
            return from_bytes(row[1])
        faces = stored_faces(self.conn, product, template, self.size, reference_indices)   # only those fitted on
        model = fit(faces, threads=os.cpu_count() or 1)
        try:
            with self.conn:
                self.conn.execute("INSERT OR REPLACE INTO variation_models VALUES (?,?,?,?,?,?,?)",
                                  (product, template, w, h, digest, to_bytes(model),
                                   time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())))
        except sqlite3.OperationalError:
            pass   # read-only store: the model is used, not cached
        return model


def variation_models(conn, face_size) -> dict[tuple[str, str], ProductModel]:
    """Every model of VariationModels at once (fitted and cached now): for tools and tests."""
    vm = VariationModels(conn, face_size)
    return {k: vm.get(k) for k in vm.groups}
