"""The training-free aligned baseline: each photo against the genuine variation of its own product, pixel by pixel.

    genuine evaluate aligned datasets/synthpack --split test

Per product, the aligned faces of the genuine TRAIN photos (train/faces.py) give a median face and a robust
per-pixel spread. A query face is refined onto the median (ECC homography), fitted photometrically (gain and
offset per channel, least squares with outliers dropped), blur-matched (whichever of the two is sharper is
blurred to the other), high-passed (exposure gradients, shadows and glare are smooth) and split into luminance
and chroma (a shifted colour plate shows in chroma). Each part is divided by its spread over the genuine train
photos; the score is the mean of the most suspicious 0.05% of the face, standardised by the same score of the
genuine train photos of that product. Nothing is learnt but the two calibration numbers on the val split
(Platt, then temperature and the operating point exactly as for trained models).

    model = fit(train_genuine_faces)            # (n, h, w, 3) uint8
    s = score(model, faces)                     # higher: more unlike genuine units; z_map() shows where
"""
from __future__ import annotations

import os
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import cv2
import numpy as np

from infer.templates import load_templates
from infer.verdict import INCONCLUSIVE, decide
from train.calibrate import fit_temperature, operating_point, sigmoid
from train.data import select
from train.evaluate import build_report
from train.faces import aligned_faces
from train.layout import discover
from train.metrics import binary_metrics

HIGH_PASS = 5.0       # px: residual minus its Gaussian blur of this sigma
FLOOR = 3.0           # grey levels: the smallest spread a pixel may have
TOP = 0.0005          # share of the face's pixels pooled into the score
CHROMA_WEIGHT = 1.0   # chroma z against luminance z
BLURS = (0.6, 0.9, 1.2, 1.6, 2.0, 2.6)   # Gaussian sigmas tried to match sharpness
MAX_REFERENCE = 96    # genuine train faces per product used for the model (evenly spread)
UNALIGNED_P = 0.5     # p(counterfeit) of a photo that could not be aligned: INCONCLUSIVE, no help to AUROC


@dataclass
class ProductModel:
    median: np.ndarray    # (h, w, 3) float32
    spread: np.ndarray    # (h, w, 4) float32: luminance, then chroma R, G, B
    centre: float         # robust centre and scale of the genuine train photos' raw scores
    scale: float
    n: int                # genuine faces behind it


def _refine(q: np.ndarray, m: np.ndarray) -> np.ndarray:
    """q warped onto m by an ECC homography (the SIFT alignment is good to about a pixel, this to a tenth)."""
    g = [cv2.cvtColor(np.clip(a, 0, 255).astype(np.uint8), cv2.COLOR_RGB2GRAY).astype(np.float32) for a in (m, q)]
    try:
        _, w = cv2.findTransformECC(g[0], g[1], np.eye(3, dtype=np.float32), cv2.MOTION_HOMOGRAPHY,
                                    (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 40, 1e-5), None, 3)
    except cv2.error:
        return q  # ECC did not converge: keep the SIFT alignment
    return cv2.warpPerspective(q, w, (q.shape[1], q.shape[0]), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                               borderMode=cv2.BORDER_REFLECT)


def _photometric(q: np.ndarray, m: np.ndarray) -> np.ndarray:
    """a * q + b per channel, least squares to m, refitted without the pixels 3 robust sigmas off."""
    out = np.empty_like(q)
    for c in range(3):
        x, t = q[..., c].ravel(), m[..., c].ravel()
        keep = np.ones(x.shape, bool)
        for _ in range(2):
            xk, tk = x[keep], t[keep]
            a = np.cov(xk, tk, bias=True)[0, 1] / max(float(xk.var()), 1e-6)
            b = tk.mean() - a * xk.mean()
            r = a * x + b - t
            keep = np.abs(r) < 3 * (1.4826 * np.median(np.abs(r)) + 1e-3)
        out[..., c] = a * q[..., c] + b
    return out


def _high_pass(d: np.ndarray) -> np.ndarray:
    return d - cv2.GaussianBlur(d, (0, 0), HIGH_PASS)


def residual(q: np.ndarray, median: np.ndarray) -> np.ndarray:
    """(h, w, 4) float32: luminance and chroma (R, G, B) of the high-passed difference from the median,
    sharpness-matched."""
    q = _photometric(_refine(q.astype(np.float32), median), median)
    d = _high_pass(q - median)
    best = float(np.mean(d * d))
    for s in BLURS:  # the sharper of the two is blurred to the other
        for a, b in ((cv2.GaussianBlur(q, (0, 0), s), median), (q, cv2.GaussianBlur(median, (0, 0), s))):
            hp = _high_pass(a - b)
            e = float(np.mean(hp * hp))
            if e < best:
                best, d = e, hp
    lum = d.mean(-1, keepdims=True)
    return np.concatenate([lum, d - lum], -1)


def _pool(z: np.ndarray) -> float:
    """log of the mean of the TOP share of the per-pixel z (the larger of luminance and chroma)."""
    zz = np.maximum(z[..., 0], CHROMA_WEIGHT * np.sqrt(np.mean(z[..., 1:] ** 2, -1)))
    k = max(1, int(TOP * zz.size))
    return float(np.log(np.partition(zz.ravel(), -k)[-k:].mean() + 1e-6))


def _map(fn, items, threads: int):
    with ThreadPoolExecutor(max(1, threads)) as ex:  # OpenCV and numpy release the GIL
        return list(ex.map(fn, items))


def fit(faces: np.ndarray, threads: int = 1) -> ProductModel:
    """The genuine-variation model of one product from its aligned genuine faces (n, h, w, 3) uint8."""
    if len(faces) > MAX_REFERENCE:
        faces = faces[np.linspace(0, len(faces) - 1, MAX_REFERENCE).round().astype(int)]
    m = np.median(faces.astype(np.float32), axis=0)
    m = np.median(np.stack(_map(lambda f: _refine(f.astype(np.float32), m), faces, threads)), axis=0)
    res = np.stack(_map(lambda f: residual(f, m), faces, threads))
    spread = np.maximum(1.4826 * np.median(np.abs(res), axis=0), FLOOR).astype(np.float32)
    raw = np.array([_pool(np.abs(r) / spread) for r in res])
    centre = float(np.median(raw))
    return ProductModel(m, spread, centre, float(max(1.4826 * np.median(np.abs(raw - centre)), 1e-3)), len(faces))


def z_map(model: ProductModel, face: np.ndarray) -> np.ndarray:
    """(h, w, 4) |z| per pixel: how far each pixel is from genuine variation (luminance, chroma)."""
    return np.abs(residual(face, model.median)) / model.spread


def score(model: ProductModel, faces: np.ndarray, threads: int = 1) -> np.ndarray:
    """Standardised anomaly score per face: 0 is a typical genuine train photo, higher is less genuine-like."""
    raw = np.array(_map(lambda f: _pool(z_map(model, f)), faces, threads), float)
    return (raw - model.centre) / model.scale


def _platt(s: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    from sklearn.linear_model import LogisticRegression

    lr = LogisticRegression(C=1e4).fit(s[:, None], y)
    return float(lr.coef_[0, 0]), float(lr.intercept_[0])


def evaluate(data, split: str = "test", workers: int = 0) -> tuple[dict, np.ndarray, np.ndarray, list[dict]]:
    """(report, labels, calibrated p(counterfeit), predictions rows), as train.evaluate.evaluate gives for a checkpoint.

    Photos that cannot be aligned (or whose product has no template or no aligned genuine train photo) get
    p = UNALIGNED_P and the verdict INCONCLUSIVE, and stay in every metric: a refusal is never a free point."""
    t0 = time.perf_counter()
    ds = discover(data)
    templates = load_templates(ds.root)
    threads = workers or os.cpu_count() or 1
    train = [r for r in select(ds, "train") if r.label == "genuine"]
    val, recs = select(ds, "val"), select(ds, split)
    if not recs or not val:
        raise SystemExit(f"{ds.root}: the baseline needs photos in the val split (calibration) and in {split}")
    sets = {"train": train, "val": val, split: recs}
    faces = {k: aligned_faces(ds.root, v, templates, workers=workers) for k, v in sets.items()}
    t_align = time.perf_counter() - t0
    models = {}
    for product, f in faces["train"].items():
        if f.ok.sum() >= 3:
            models[product] = fit(f.faces[f.ok], threads)

    def scores(name):
        rr = sets[name]
        s, reason = np.full(len(rr), np.nan), [""] * len(rr)
        for product, f in faces[name].items():
            for j, i in enumerate(f.index):
                reason[i] = f.reasons[j] or ("" if product in models else "no_reference")
            if product in models:
                ok = f.ok.copy()
                s[f.index[ok]] = score(models[product], f.faces[ok], threads)
        return s, reason

    sv, rv = scores("val")
    yv = np.array([r.label == "counterfeit" for r in val], int)
    okv = np.array([not x for x in rv])
    a, b = _platt(sv[okv], yv[okv])
    t = fit_temperature(a * sv[okv] + b, yv[okv])
    th = operating_point(sigmoid((a * sv[okv] + b) / t), yv[okv])
    s, reasons = (sv, rv) if split == "val" else scores(split)
    y = np.array([r.label == "counterfeit" for r in recs], int)
    ok = np.array([not x for x in reasons])
    p = np.where(ok, sigmoid((a * np.nan_to_num(s) + b) / t), UNALIGNED_P)
    verdicts = [decide(float(pi), th) if k else INCONCLUSIVE for pi, k in zip(p, ok)]
    secs = np.concatenate([f.seconds[f.ok] for f in faces[split].values()] or [np.zeros(1)])
    train_failed = sum(int((~f.ok).sum()) for f in faces["train"].values())
    head = {
        "checkpoint": "aligned", "scorer": "training-free aligned baseline (train/baseline.py)",
        "data": str(ds.root), "split": split,
        "caveat": "the val split was used for calibration (Platt, temperature, thresholds): optimistic"
                  if split == "val" else None,
        "same_data_as_training": True,
        "unreadable": [recs[i].rel for i in range(len(recs)) if reasons[i].startswith("unreadable")],
        "not_aligned": [{"path": recs[i].rel, "label": recs[i].label, "defect": recs[i].extra.get("defect", ""),
                         "reason": reasons[i]} for i in range(len(recs)) if not ok[i]],
        "not_aligned_policy": f"p_counterfeit={UNALIGNED_P} and verdict INCONCLUSIVE; counted in every metric",
        "alignment": {"photos": int(len(recs)), "aligned": int(ok.sum()),
                      "reasons": dict(Counter(x for x in reasons if x)),
                      "val_not_aligned": int((~okv).sum()), "train_genuine_not_aligned": train_failed,
                      "rectify_seconds_per_photo": round(float(secs.mean()), 4),  # one process, when it was cached
                      "seconds_aligning": round(t_align, 1)},  # this run, cache hits included
        "baseline": {"high_pass": HIGH_PASS, "floor": FLOOR, "top": TOP, "chroma_weight": CHROMA_WEIGHT,
                     "blurs": list(BLURS), "reference_photos": {k: m.n for k, m in models.items()}},
        "calibration": {"platt": [a, b], "temperature": t, "val_photos": int(okv.sum())},
    }
    report, rows = build_report(recs, y, p, th, verdicts, head)
    report["metrics_aligned_only"] = binary_metrics(y[ok], p[ok]) if ok.any() else None
    report["alignment"]["seconds_total"] = round(time.perf_counter() - t0, 1)
    return report, y, p, rows
