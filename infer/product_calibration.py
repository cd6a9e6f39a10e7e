"""Each product's own operating point, from its genuine photos in the reference store. No torch.

    cals = ProductCalibrations(conn, model, meta["fusion"])     # model: infer.runtime.OnnxModel (a comparator)
    cal = cals.get(product, template_key, template_input)      # computed on first use, cached in the store
    th = decision_thresholds(cal)                               # threshold_genuine, threshold_suspect, validation

Why. A comparator's operating point is fitted on its validation split (SynthPack val). Its ranking carries over to a
real product the model never saw; its *location* does not: on real products every genuine unit scored above the
SynthPack suspect threshold (issue 22). Brands rarely hold counterfeits of a new product, but they hold genuine
photos, so the product's operating point comes from its genuine photos.

Method. Every genuine face of the product (and template) in the store gets a held-out score: K = min(5, n) folds;
the comparator scores every face against the product's template, and, where the model fuses with genuine variation
(meta["fusion"]), each fold's faces get their variation score from a model fitted on the other folds only (a face
is never scored by a model fitted on itself), and the held-out score is the fused p. In logit space, the held-out
genuine scores give a median m_p and a robust scale s_p (1.4826 x MAD, shrunk toward the model's own genuine scale
with a prior of SCALE_PRIOR photos: 10 photos give a noisy scale). The model recorded the same two numbers, m_val and
s_val, for its validation genuine photos (thresholds["genuine_logit"], genuine.train.calibrate.operating_point).
Each of the model's thresholds t maps to the product's as

    t_p = sigmoid(m_p + (logit(t) - m_val) * s_p / s_val)

then threshold_suspect is raised to just above the highest held-out genuine p (no held-out genuine photo of the
product is SUSPECT; with fewer than 100 photos, a 1% false-alarm target can allow none), and threshold_genuine stays
strictly below it. The assumption, stated in every calibration's evidence: the model's separation of counterfeits
from genuine photos, measured in units of the genuine spread on its validation data, carries over to the product.
The counterfeit side is the model's own validation (thresholds["validation"]), carried into the product's
thresholds: a model that is not validated stays not validated for every product.
"""
from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import time

import numpy as np

from genuine.infer.variation_store import face_groups, stored_faces

MIN_CALIBRATION_PHOTOS = 10   # genuine photos a product needs for its own operating point
MAX_FOLDS = 5                 # cross-fitting folds (fewer when fewer photos)
SCALE_PRIOR = 5.0             # photos' worth of the model's genuine logit scale in the product's
BATCH = 16                    # faces per comparator call
LOGIT_CLIP = 1e-7             # p clipped to [LOGIT_CLIP, 1 - LOGIT_CLIP] before its logit
MIN_LOGIT_SCALE = 1e-3        # floor of a robust logit scale: identical scores must not divide by zero
VERSION = "genuine-logit-standardised/1"   # in the cache key: a change of method recomputes every calibration
PREDATES = "model predates per-product calibration: re-export"
METHOD = ("held-out genuine scores (cross-fitted over {folds} folds) standardised in logit space against the "
          "model's validation genuine scores: t_product = sigmoid(m_p + (logit(t_model) - m_val) * s_p / s_val); "
          "threshold_suspect at least just above the highest held-out genuine score. Assumes the model's separation "
          "of counterfeits, in units of genuine spread on its validation data, carries over to this product")

CALIBRATION_SCHEMA = """
CREATE TABLE IF NOT EXISTS product_calibrations (
    product TEXT NOT NULL,
    template TEXT NOT NULL,
    model_sha256 TEXT NOT NULL,
    faces TEXT NOT NULL,
    calibration TEXT NOT NULL,
    fitted_at TEXT NOT NULL,
    PRIMARY KEY (product, template, model_sha256)
);
"""


def logit(p):
    p = np.clip(np.asarray(p, np.float64), LOGIT_CLIP, 1 - LOGIT_CLIP)
    return np.log(p / (1 - p))


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-np.clip(np.asarray(z, np.float64), -60, 60)))


def _robust(z: np.ndarray) -> tuple[float, float]:
    m = float(np.median(z))
    return m, float(1.4826 * np.median(np.abs(z - m)))


def genuine_logit(p_genuine) -> dict:
    """Median and robust scale (1.4826 x MAD, floored) of genuine photos' logit(p), and their count: where genuine
    photos sit and how widely they spread in the score's logit space (recorded with every operating point)."""
    z = logit(p_genuine)
    if not len(z):
        return {"median": 0.0, "scale": 1.0, "n": 0}
    m, s = _robust(z)
    return {"median": m, "scale": max(s, MIN_LOGIT_SCALE), "n": int(len(z))}


def logit_stats(thresholds: dict) -> dict | None:
    """The operating point's genuine_logit when a product can be standardised against it, else None (a model
    calibrated before issue 22)."""
    g = (thresholds or {}).get("genuine_logit")
    ok = isinstance(g, dict) and all(isinstance(g.get(k), (int, float)) and np.isfinite(g[k])
                                     for k in ("median", "scale")) and g["scale"] > 0
    return g if ok else None


def faces_digest(shas: list[str]) -> str:
    """What a cached calibration was made from: the method and the faces (sha256 order)."""
    return hashlib.sha256((VERSION + "\n" + "".join(shas)).encode()).hexdigest()


def held_out_scores(faces: np.ndarray, template_x: np.ndarray, model, fusion: dict | None = None,
                    threads: int = 1) -> dict:
    """Every face's held-out score: {"p", "comparator_p", "variation_score" (or None), "fused", "folds"}.
    faces: (n, H, W, 3) uint8 genuine faces of one product at the model's input size; template_x: its template's
    model input. The comparator scores every face (batched); with a fusion, each fold's variation scores come from a
    model fitted on the other folds, when every fold leaves at least variation.MIN_PHOTOS faces to fit on."""
    from genuine.infer.variation import MIN_PHOTOS, fit, fused_p, score

    n = len(faces)
    k = min(MAX_FOLDS, n)
    comp = np.concatenate([model.compare(faces[i:i + BATCH], np.repeat(template_x[None], len(faces[i:i + BATCH]), 0))
                           ["p_counterfeit"] for i in range(0, n, BATCH)]).astype(np.float64) if n else np.zeros(0)
    fold = np.arange(n) % max(k, 1)
    largest = int(np.bincount(fold).max()) if n else 0
    if not (fusion and n - largest >= MIN_PHOTOS):
        return {"p": comp, "comparator_p": comp, "variation_score": None, "fused": False, "folds": k}
    s = np.empty(n)
    for f in range(k):
        test = fold == f
        s[test] = score(fit(faces[~test], threads), faces[test], threads)
    return {"p": np.asarray(fused_p(comp, s, fusion), np.float64), "comparator_p": comp, "variation_score": s,
            "fused": True, "folds": k}


def standardised(p_genuine, thresholds: dict) -> dict:
    """The product's thresholds from its held-out genuine scores and the model's operating point (which carries
    genuine_logit): see the module's docstring. Returns the numbers behind them too."""
    g = logit_stats(thresholds)
    if g is None:
        raise ValueError(PREDATES)
    p = np.asarray(p_genuine, np.float64)
    z = logit(p)
    n = len(z)
    m_p, mad = _robust(z)
    m_val, s_val = float(g["median"]), max(float(g["scale"]), MIN_LOGIT_SCALE)
    # shrink the product's spread toward the model's: SCALE_PRIOR photos' worth of s_val (in variance)
    s_p = max(float(np.sqrt((n * mad ** 2 + SCALE_PRIOR * s_val ** 2) / (n + SCALE_PRIOR))), MIN_LOGIT_SCALE)
    raw = {k: float(sigmoid(m_p + (float(logit(thresholds[k])) - m_val) * s_p / s_val))
           for k in ("threshold_genuine", "threshold_suspect")}
    ts = max(raw["threshold_suspect"], float(np.nextafter(p.max(), 2.0)))   # no held-out genuine photo is SUSPECT
    tg = raw["threshold_genuine"]
    if not tg < ts:
        tg = float(np.nextafter(ts, -1.0))
    return {"threshold_genuine": tg, "threshold_suspect": ts, "standardised": raw,
            "raised_to_max_genuine": ts > raw["threshold_suspect"], "median_logit": m_p, "scale_logit": s_p,
            "scale_logit_photos": mad, "model_median_logit": m_val, "model_scale_logit": s_val,
            "model_thresholds": {k: float(thresholds[k]) for k in ("threshold_genuine", "threshold_suspect")}}


def calibrate(faces: np.ndarray, template_x: np.ndarray, model, thresholds: dict, fusion: dict | None = None,
              threads: int = 1) -> dict:
    """One product's calibration with its evidence (JSON-able). thresholds: the operating point the product's
    scores are standardised against (the fusion's when the scores are fused, else the model's)."""
    h = held_out_scores(faces, template_x, model, fusion, threads)
    st = standardised(h["p"], thresholds)
    p, tg, ts = h["p"], st["threshold_genuine"], st["threshold_suspect"]
    mv = thresholds.get("validation")
    why = None
    if isinstance(mv, dict) and mv.get("validated") is False:
        why = f"the model's own validation (its counterfeit side): {mv.get('why') or 'not validated'}"
    numbers = {k: v for k, v in st.items() if k not in ("threshold_genuine", "threshold_suspect")}
    return {"method": METHOD.format(folds=h["folds"]), "version": VERSION, "photos": int(len(p)),
            "folds": int(h["folds"]), "scores": "fused" if h["fused"] else "comparator",
            "threshold_genuine": tg, "threshold_suspect": ts, **numbers,
            "held_out_genuine": {"GENUINE": float(np.mean(p < tg)),
                                 "INCONCLUSIVE": float(np.mean((p >= tg) & (p < ts))),
                                 "SUSPECT": float(np.mean(p >= ts))},
            "held_out_p": {"median": float(np.median(p)), "max": float(p.max()), "min": float(p.min())},
            "model_validation": mv if isinstance(mv, dict) else None, "model_sha256": model.sha256,
            "validated": why is None, "why": why}


def decision_thresholds(cal: dict) -> dict:
    """What infer.verdict.decide reads, from a calibration: its thresholds and the model's validation."""
    th = {"threshold_genuine": cal["threshold_genuine"], "threshold_suspect": cal["threshold_suspect"]}
    if isinstance(cal.get("model_validation"), dict):
        th["validation"] = cal["model_validation"]
    elif cal.get("validated") is False:
        th["validation"] = {"validated": False, "why": cal.get("why")}
    return th


def stored_calibrations(conn) -> list[dict]:
    """Every cached calibration: {product, template, model_sha256, current (its faces are the store's now),
    calibration, fitted_at}; [] for a store without the table."""
    try:
        rows = conn.execute("SELECT product, template, model_sha256, faces, calibration, fitted_at FROM "
                            "product_calibrations ORDER BY product, template, fitted_at").fetchall()
    except sqlite3.OperationalError:
        return []
    groups = face_groups(conn)
    return [{"product": p, "template": t, "model_sha256": m, "current": d == faces_digest(groups.get((p, t), [])),
             "calibration": json.loads(c), "fitted_at": f} for p, t, m, d, c, f in rows]


class ProductCalibrations:
    """{(product, template key): calibration} for one model, from the store's genuine faces: computed the first time
    a product is judged (a scan of one product calibrates once), cached in the store keyed by the model and the
    faces, and recomputed when the faces change; a read-only store recomputes instead of failing."""

    def __init__(self, conn, model, fusion: dict | None = None):
        self.conn, self.model, self.fusion = conn, model, fusion or {}
        self.groups = face_groups(conn)
        self._cals: dict[tuple[str, str], dict] = {}
        self.computed = 0   # calibrations computed (not read from the cache) by this object

    def count(self, product: str, template: str | None) -> int:
        """Genuine photos of the product held for this template (every template's when None)."""
        if template is None:
            return sum(len(v) for (p, _), v in self.groups.items() if p == product)
        return len(self.groups.get((product, template), []))

    def fused(self, product: str, template: str) -> bool:
        """Whether the product's held-out scores are fused: the model fuses, and every fold leaves enough faces."""
        from genuine.infer.variation import MIN_PHOTOS

        n = self.count(product, template)
        return bool(self.fusion) and n - -(-n // max(min(MAX_FOLDS, n), 1)) >= MIN_PHOTOS

    def get(self, product: str, template: str, template_x: np.ndarray) -> dict | None:
        """The calibration of (product, template), or None with fewer than MIN_CALIBRATION_PHOTOS genuine photos.
        Raises ValueError(PREDATES) when the operating point it would use has no genuine_logit."""
        key = (product, template)
        if self.count(*key) < MIN_CALIBRATION_PHOTOS:
            return None
        if key not in self._cals:
            self._cals[key] = self._load(product, template, template_x)
        return self._cals[key]

    def thresholds(self, product: str, template: str) -> dict:
        """The operating point the product's scores are standardised against: the fusion's or the model's."""
        return self.fusion["thresholds"] if self.fused(product, template) else self.model.meta["thresholds"]

    def _load(self, product: str, template: str, template_x: np.ndarray) -> dict:
        th = self.thresholds(product, template)
        if logit_stats(th) is None:
            raise ValueError(PREDATES)
        digest = faces_digest(self.groups[(product, template)])
        try:
            row = self.conn.execute("SELECT faces, calibration FROM product_calibrations WHERE product = ? AND "
                                    "template = ? AND model_sha256 = ?",
                                    (product, template, self.model.sha256)).fetchone()
        except sqlite3.OperationalError:
            row = None   # a store opened without the table (read-only, older): computed, not cached
        if row is not None and row[0] == digest:
            return json.loads(row[1])
        faces = stored_faces(self.conn, product, template, self.model.face_size)
        cal = calibrate(faces, template_x, self.model, th, self.fusion if self.fused(product, template) else None,
                        threads=os.cpu_count() or 1)
        cal.update(product=product, template=template,
                   fitted_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
        self.computed += 1
        try:
            with self.conn:
                self.conn.execute("INSERT OR REPLACE INTO product_calibrations VALUES (?,?,?,?,?,?)",
                                  (product, template, self.model.sha256, digest, json.dumps(cal), cal["fitted_at"]))
        except sqlite3.OperationalError:
            pass   # read-only store: used, not cached
        return cal
