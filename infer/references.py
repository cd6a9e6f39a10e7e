"""Reference gallery: brand trainers' genuine (and known counterfeit) photos per product, as embeddings,
and each product's templates (its genuine face with keypoints: artwork, or the median of genuine photos).

An SQLite file (WAL, so inspections read while a trainer adds) holding, per photo: product, label, sha256,
the model's embedding and the model's sha256, who added it, when and why, and a 1024 px copy of the photo
so that `reembed` can follow a new model and `export`/`import` can move a brand's references between ports.

    db = ReferenceDB("refs.db", create=True)
    db.add(inspector, "acme-tea", ["refs/acme-tea/"], label="genuine", note="factory samples")
    match = db.gallery().match(embedding)    # product, similarities, closest references
    db.add_template("acme-tea", "artwork/acme-tea.png", kind="artwork")    # no model needed
    templates = db.templates("acme-tea")     # [infer.rectify.Template]
"""
from __future__ import annotations

import getpass
import hashlib
import io
import json
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from genuine.infer.errors import GenuineError
from genuine.infer.photo import PhotoError, load_photo
from genuine.infer.product_calibration import CALIBRATION_SCHEMA
from genuine.infer.sources import photo_bytes
from genuine.infer.templates import TEMPLATE_COLUMNS, TEMPLATES_SCHEMA, store_template, stored_templates
from genuine.infer.variation_store import FACE_COLUMNS, VARIATION_SCHEMA
from genuine.infer.zone_book import ZONE_COLUMNS, ZONES_SCHEMA, ZoneBook

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS refs (
    id INTEGER PRIMARY KEY,
    product TEXT NOT NULL,
    label TEXT NOT NULL CHECK (label IN ('genuine', 'counterfeit')),
    sha256 TEXT NOT NULL UNIQUE,
    embedding BLOB NOT NULL,
    model_sha256 TEXT NOT NULL,
    added_at TEXT NOT NULL,
    added_by TEXT NOT NULL,
    note TEXT NOT NULL DEFAULT '',
    source TEXT NOT NULL DEFAULT '',
    photo BLOB
);
CREATE INDEX IF NOT EXISTS refs_product ON refs (product, label);
""" + TEMPLATES_SCHEMA + VARIATION_SCHEMA + CALIBRATION_SCHEMA + ZONES_SCHEMA
# IF NOT EXISTS: databases made before templates (genuine photos, calibrations) existed gain the tables when opened
STORE_SIDE = 1024  # enough to re-embed for any model input up to 512 px (decoded at 2x)
COLUMNS = "id, product, label, sha256, model_sha256, added_at, added_by, note, source"


class ReferenceError(GenuineError, ValueError):
    """A reference database that cannot be used as asked; the message says why and what to do."""


def _stored_copy(img) -> bytes:
    img = img.copy()
    img.thumbnail((STORE_SIDE, STORE_SIDE))
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=95)
    return buf.getvalue()


class ReferenceDB:
    def __init__(self, path, create: bool = False):
        self.path = Path(path)
        if not self.path.exists() and not create:
            raise ReferenceError(f"{self.path}: no reference database; create one with genuine references add")
        if create and not self.path.parent.is_dir():
            self.path.parent.mkdir(parents=True)   # `--db runs/refs.db` in a fresh clone: the folder is made too
        try:
            # Not bound to the opening thread: a Ray actor opens the store in __init__ and reads it from its task
            # threads. Safe: Python's sqlite3 is built serialized (threadsafety 3), and one connection's calls queue.
            self.conn = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.executescript(SCHEMA)
        except sqlite3.DatabaseError as e:
            raise ReferenceError(f"{self.path}: not a reference database ({e})") from None

    # -- metadata ------------------------------------------------------------------------------
    def meta(self, key: str, default=None):
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else default

    def set_meta(self, key: str, value) -> None:
        self.conn.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, json.dumps(value)))

    @property
    def model_sha256(self) -> str | None:
        return self.meta("model_sha256")

    def check_model(self, model_sha: str) -> None:
        have = self.model_sha256
        if have and have != model_sha:
            raise ReferenceError(f"{self.path}: embeddings were made by model {have[:16]}..., not {model_sha[:16]}...; "
                                 f"run genuine references reembed MODEL --db {self.path}")

    def version(self) -> int:
        """Changes whenever another connection commits: inspectors reload the gallery then."""
        return self.conn.execute("PRAGMA data_version").fetchone()[0] + self.conn.total_changes

    # -- changes -------------------------------------------------------------------------------
    def add(self, inspector, product: str, sources: list[str], label: str = "genuine", note: str = "",
            added_by: str | None = None) -> dict:
        if label not in ("genuine", "counterfeit"):
            raise ReferenceError(f"label must be genuine or counterfeit, not {label!r}")
        self.check_model(inspector.model.sha256)
        who = added_by or getpass.getuser()
        report = {"added": 0, "duplicates": [], "errors": [], "quality": []}
        for e, data in photo_bytes(sources, report["errors"]):
            try:
                img = load_photo(data, min_side=STORE_SIDE)
            except (OSError, PhotoError) as err:
                report["errors"].append(f"{e.key}: {getattr(err, 'reason', err)}")
                continue
            sha = hashlib.sha256(data).hexdigest()
            if self.conn.execute("SELECT 1 FROM refs WHERE sha256 = ?", (sha,)).fetchone():
                report["duplicates"].append(e.key)
                continue
            _, x, q = inspector.load(img)
            if q.issues:
                report["quality"].append(f"{e.key}: {'; '.join(a for _, a in q.issues)} (added anyway)")
            emb = inspector.model.run(x[None])["embedding"][0].astype(np.float32)
            with self.conn:
                self.conn.execute("BEGIN IMMEDIATE")
                self.conn.execute(
                    "INSERT OR IGNORE INTO refs (product, label, sha256, embedding, model_sha256, added_at, added_by, "
                    "note, source, photo) VALUES (?,?,?,?,?,?,?,?,?,?)",
                    (product, label, sha, emb.tobytes(), inspector.model.sha256,
                     time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), who, note, e.key, _stored_copy(img)))
                self.set_meta("model_sha256", inspector.model.sha256)
            report["added"] += 1
        return report

    def add_template(self, product: str, image, source: str = "", kind: str = "artwork", note: str = "",
                     added_by: str | None = None) -> dict:
        """Store a template (no model needed): see infer.templates.store_template. Nothing is stored, and
        RectifyError says why, when the image has too few keypoints to align photos to. A face template learns its
        zones (barcode, text lines, inks: infer/zones.py) at once, so that inspections do not pay for it."""
        out = store_template(self.conn, product, image, source, kind, note, added_by or getpass.getuser())
        if kind != "view":
            out["zones"] = ZoneBook(self.conn).get(out["template"])
        return out

    def templates(self, product: str | None = None) -> list:
        """Every stored template (of `product`) as infer.rectify.Template; no model needed."""
        return stored_templates(self.conn, product)

    def remove(self, product: str | None = None, label: str | None = None, sha256: str | None = None) -> int:
        """Reference photos, and templates too unless a label is given (templates have none). Returns the count."""
        if not (product or sha256):
            raise ReferenceError("say what to remove: --product NAME [--label L] or --sha256 SHA")
        given = {col: val for col, val in (("product", product), ("label", label), ("sha256", sha256)) if val}

        def delete(table: str, cols: tuple[str, ...]) -> int:
            use = {c: v for c, v in given.items() if c in cols}
            return self.conn.execute(f"DELETE FROM {table} WHERE {' AND '.join(f'{c} = ?' for c in use)}",
                                     list(use.values())).rowcount

        with self.conn:
            n = delete("refs", ("product", "label", "sha256"))
            if not label:
                n += delete("templates", ("product", "sha256"))
                n += delete("views", ("product", "sha256"))   # identification views: templates that are not faces
            if label in (None, "genuine"):   # genuine photos behind the variation models, which refit on next use
                n += delete("genuine_faces", ("product", "sha256"))
                if product and not sha256:   # and behind the product's calibrations (recomputed when faces change)
                    self.conn.execute("DELETE FROM product_calibrations WHERE product = ?", (product,))
            return n

    def reembed(self, inspector) -> int:
        """Recompute every embedding with a new model from the stored photo copies."""
        rows = self.conn.execute("SELECT id, photo FROM refs").fetchall()
        new = []
        for rid, photo in rows:
            _, x, _ = inspector.load(photo)
            new.append((inspector.model.run(x[None])["embedding"][0].astype(np.float32).tobytes(),
                        inspector.model.sha256, rid))
        with self.conn:
            self.conn.execute("BEGIN IMMEDIATE")
            self.conn.executemany("UPDATE refs SET embedding = ?, model_sha256 = ? WHERE id = ?", new)
            self.set_meta("model_sha256", inspector.model.sha256)
            self.conn.execute("DELETE FROM meta WHERE key = 'fusion'")  # calibrated for the old embeddings
        return len(new)

    def export(self, out, product: str | None = None) -> int:
        out = Path(out)
        if out.exists():
            raise ReferenceError(f"{out} exists; choose a new file")
        dst = ReferenceDB(out, create=True)
        dst.conn.execute("ATTACH DATABASE ? AS src", (str(self.path),))
        with dst.conn:
            cond, args = ("WHERE product = ?", (product,)) if product else ("", ())
            n = dst.conn.execute(f"INSERT INTO refs SELECT * FROM src.refs {cond}", args).rowcount
            for table in ("templates", "views"):
                n += dst.conn.execute(f"INSERT INTO {table} ({TEMPLATE_COLUMNS}) SELECT {TEMPLATE_COLUMNS} FROM "
                                      f"src.{table} {cond}", args).rowcount
            n += dst.conn.execute(f"INSERT INTO genuine_faces ({FACE_COLUMNS}) SELECT {FACE_COLUMNS} FROM "
                                  f"src.genuine_faces {cond}", args).rowcount
            dst.conn.execute(f"INSERT INTO zones ({ZONE_COLUMNS}) SELECT {ZONE_COLUMNS} FROM src.zones {cond}", args)
            dst.conn.execute("INSERT OR REPLACE INTO meta SELECT * FROM src.meta")
        dst.conn.execute("DETACH DATABASE src")
        dst.conn.close()
        return n

    def import_from(self, other) -> dict:
        src = ReferenceDB(other)
        theirs = src.model_sha256
        src.conn.close()
        if theirs and self.model_sha256 and theirs != self.model_sha256:
            raise ReferenceError(f"{other}: embeddings of model {theirs[:16]}... do not match this database's "
                                 f"{self.model_sha256[:16]}...; reembed one of them with the same model first")
        self.conn.execute("ATTACH DATABASE ? AS src", (str(other),))
        with self.conn:
            before = self.count()
            self.conn.execute("INSERT OR IGNORE INTO refs (product, label, sha256, embedding, model_sha256, added_at, "
                              "added_by, note, source, photo) SELECT product, label, sha256, embedding, model_sha256, "
                              "added_at, added_by, note, source, photo FROM src.refs")
            if theirs and not self.model_sha256:
                self.set_meta("model_sha256", theirs)
            added = self.count() - before
            # A file written before templates or genuine photos existed lacks their table: check, do not assume.
            templates, views, faces, _ = [self.conn.execute(
                f"INSERT OR IGNORE INTO {table} ({cols}) SELECT {cols} FROM src.{table}").rowcount
                if self.conn.execute("SELECT 1 FROM src.sqlite_master WHERE type = 'table' AND name = ?",
                                     (table,)).fetchone() else 0
                for table, cols in (("templates", TEMPLATE_COLUMNS), ("views", TEMPLATE_COLUMNS),
                                    ("genuine_faces", FACE_COLUMNS), ("zones", ZONE_COLUMNS))]
        self.conn.execute("DETACH DATABASE src")
        return {"added": added, "templates": templates + views, "genuine_photos": faces}   # views: templates too

    # -- reading -------------------------------------------------------------------------------
    def count(self) -> int:
        return self.conn.execute("SELECT COUNT(*) FROM refs").fetchone()[0]

    def template_count(self, product: str | None = None) -> int:
        cond, args = ("WHERE product = ?", (product,)) if product else ("", ())
        return self.conn.execute(f"SELECT COUNT(*) FROM templates {cond}", args).fetchone()[0]

    def summary(self) -> list[tuple]:
        """(product, label, count) rows; templates count under 'template', --genuine-photos under 'genuine photo'."""
        return self.conn.execute("SELECT product, label, COUNT(*) FROM refs GROUP BY product, label UNION ALL "
                                 "SELECT product, 'template', COUNT(*) FROM templates GROUP BY product UNION ALL "
                                 "SELECT product, 'genuine photo', COUNT(*) FROM genuine_faces GROUP BY product "
                                 "ORDER BY 1, 2").fetchall()

    def rows(self, product: str | None = None) -> list[dict]:
        """Reference photos, then templates (label 'template', with kind, size and keypoint count)."""
        cond, args = ("WHERE product = ?", (product,)) if product else ("", ())
        cur = self.conn.execute(f"SELECT {COLUMNS} FROM refs {cond} ORDER BY product, label, id", args)
        out = [dict(zip(COLUMNS.split(", "), r)) for r in cur.fetchall()]
        cur = self.conn.execute(f"SELECT id, product, 'template', sha256, '', added_at, added_by, note, source, kind, "
                                f"width, height, length(keypoints) / 8, kp_version FROM templates {cond} "
                                f"ORDER BY product, id", args)
        keys = COLUMNS.split(", ") + ["kind", "width", "height", "keypoints", "kp_version"]
        return out + [dict(zip(keys, r)) for r in cur.fetchall()]

    def gallery(self) -> "Gallery":
        rows = self.conn.execute("SELECT product, label, source, sha256, embedding FROM refs ORDER BY id").fetchall()
        emb = np.stack([np.frombuffer(r[4], np.float32) for r in rows]) if rows else np.zeros((0, 1), np.float32)
        return Gallery(emb, [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows], [r[3] for r in rows])


@dataclass
class Gallery:
    emb: np.ndarray            # (N, D), L2-normalised
    products: list[str]
    labels: list[str]
    sources: list[str]
    shas: list[str]

    def __len__(self) -> int:
        return len(self.products)

    def match(self, e: np.ndarray, exclude_sha: str | None = None) -> dict | None:
        """Nearest references: the product they say this is, and its genuine/counterfeit similarities."""
        if not len(self):
            return None
        sims = self.emb @ np.asarray(e, np.float32)
        if exclude_sha:  # calibration must not match a photo with itself
            sims = np.where(np.array(self.shas) == exclude_sha, -2.0, sims)
        best = int(np.argmax(sims))
        product = self.products[best]
        out = {"product": product, "nearest": float(sims[best]), "nearest_ref": self.sources[best]}
        # The closest reference of any other product: a near tie means the embedding cannot tell them apart.
        other = [i for i, p in enumerate(self.products) if p != product]
        k2 = max(other, key=lambda i: sims[i]) if other else None
        out["runner_up"] = None if k2 is None else self.products[k2]
        out["runner_up_sim"] = None if k2 is None else float(sims[k2])
        for label in ("genuine", "counterfeit"):
            idx = [i for i, (p, lab) in enumerate(zip(self.products, self.labels)) if p == product and lab == label]
            k = max(idx, key=lambda i: sims[i]) if idx else None
            out[label] = None if k is None else float(sims[k])
            out[f"{label}_ref"] = None if k is None else self.sources[k]
            out[f"n_{label}"] = len(idx)
        return out


def fusion_features(p_counterfeit: float, m: dict) -> np.ndarray:
    """[classifier logit, genuine similarity, counterfeit - genuine similarity, has counterfeit refs]."""
    p = min(max(float(p_counterfeit), 1e-6), 1 - 1e-6)
    has_c = m["counterfeit"] is not None
    return np.array([np.log(p / (1 - p)), m["genuine"], (m["counterfeit"] - m["genuine"]) if has_c else 0.0,
                     float(has_c)], np.float64)


def fuse(p_counterfeit: float, m: dict, fusion: dict) -> float:
    """Calibrated probability of counterfeit from the classifier and the references (logistic, fitted on val)."""
    z = fusion["bias"] + float(np.dot(fusion["weights"], fusion_features(p_counterfeit, m)))
    return float(1.0 / (1.0 + np.exp(-np.clip(z, -60, 60))))
