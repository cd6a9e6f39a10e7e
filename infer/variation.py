"""A product's genuine variation, pixel by pixel: the training-free baseline's model, torch-free for the handheld.

    model = fit(genuine_faces)                  # (n, h, w, 3) uint8, aligned in the template's frame
    s = score(model, faces)                     # standardised: 0 a typical genuine photo, higher less genuine-like
    z = z_map(model, face)                      # (h, w, 4): where, in luminance and chroma
    p = fused_p(p_comparator, s, meta["fusion"])   # the comparator and this model, as fitted on val

The inspector fits it on the comparator's own input (the face at the model's input size), from the genuine photos
of a product in the reference store (infer/variation_store.py); training fits it on the train split's genuine
faces and the fusion's weights on val (train/variation_fusion.py).

From the aligned faces of genuine photos: a median face and a robust per-pixel spread. A query face is refined onto
the median (ECC homography), fitted photometrically (gain and offset per channel, least squares with outliers
dropped), blur-matched (whichever of the two is sharper is blurred to the other), high-passed (exposure gradients,
shadows and glare are smooth) and split into luminance and chroma (a shifted colour plate shows in chroma). Each
part is divided by its spread; the score is the mean of the most suspicious 0.05% of the face, standardised by the
same score of the genuine photos the model was fit on. It needs no training, only genuine photos of the product:
`genuine evaluate aligned` scores it (train/baseline.py), and it is what the comparator misses most (text,
barcode, logo: BENCHMARKS.md, issue 11's table).
"""
from __future__ import annotations

import io
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import cv2
import numpy as np

HIGH_PASS = 5.0       # px: residual minus its Gaussian blur of this sigma
FLOOR = 3.0           # grey levels: the smallest spread a pixel may have
TOP = 0.0005          # share of the face's pixels pooled into the score
CHROMA_WEIGHT = 1.0   # chroma z against luminance z
BLURS = (0.6, 0.9, 1.2, 1.6, 2.0, 2.6)   # Gaussian sigmas tried to match sharpness
MAX_REFERENCE = 96    # genuine train faces per product used for the model (evenly spread)
MIN_PHOTOS = 5        # genuine photos a model needs: the per-pixel spread of fewer is noise
SCORE_CLIP = 50.0     # |standardised score| kept below this: one broken face must not overflow the fusion


@dataclass
class ProductModel:
    median: np.ndarray    # (h, w, 3) float32
    spread: np.ndarray    # (h, w, 4) float32: luminance, then chroma R, G, B
    centre: float         # robust centre and scale of the genuine train photos' raw scores
    scale: float
    n: int                # genuine faces behind it
    _ref: list | None = field(default=None, repr=False, compare=False)   # high_passes(median), made on first use

    @property
    def ref(self) -> list:
        if self._ref is None:
            self._ref = high_passes(self.median)
        return self._ref


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


def high_passes(median: np.ndarray) -> list[np.ndarray]:
    """The high-passed median, then the high-passed median blurred by each of BLURS: computed once per model, as the
    high-pass is linear (high_pass(a - b) = high_pass(a) - high_pass(b)), so each query only filters itself."""
    return [_high_pass(median)] + [_high_pass(cv2.GaussianBlur(median, (0, 0), s)) for s in BLURS]


def residual(q: np.ndarray, median: np.ndarray, ref: list | None = None) -> np.ndarray:
    """(h, w, 4) float32: luminance and chroma (R, G, B) of the high-passed difference from the median,
    sharpness-matched. ref: high_passes(median), when the caller keeps it."""
    ref = ref if ref is not None else high_passes(median)
    q = _photometric(_refine(q.astype(np.float32), median), median)
    hq = _high_pass(q)
    d = hq - ref[0]
    best = float(np.mean(d * d))
    for s, hm in zip(BLURS, ref[1:]):  # the sharper of the two is blurred to the other
        for hp in (_high_pass(cv2.GaussianBlur(q, (0, 0), s)) - ref[0], hq - hm):
            e = float(np.mean(hp * hp))
            if e < best:
                best, d = e, hp
    lum = d.mean(-1, keepdims=True)
    return np.concatenate([lum, d - lum], -1)


def _strength(z: np.ndarray) -> np.ndarray:
    """(h, w): per pixel, the larger of the luminance and the chroma |z|."""
    return np.maximum(z[..., 0], CHROMA_WEIGHT * np.sqrt(np.mean(z[..., 1:] ** 2, -1)))


def _pool(z: np.ndarray) -> float:
    """log of the mean of the TOP share of the per-pixel z (the larger of luminance and chroma)."""
    zz = _strength(z)
    k = max(1, int(TOP * zz.size))
    return float(np.log(np.partition(zz.ravel(), -k)[-k:].mean() + 1e-6))


def _map(fn, items, threads: int):
    with ThreadPoolExecutor(max(1, threads)) as ex:  # OpenCV and numpy release the GIL
        return list(ex.map(fn, items))


def reference_indices(n: int) -> np.ndarray:
    """Which of n genuine faces a model is fitted on: all, or MAX_REFERENCE evenly spread (callers holding the
    faces encoded decode only these)."""
    return np.arange(n) if n <= MAX_REFERENCE else np.linspace(0, n - 1, MAX_REFERENCE).round().astype(int)


def half(a: np.ndarray) -> np.ndarray:
    """a at float16 precision, as float32: a model's median and spread are kept so (the officer's page downloads them
    as float16, half the bytes, and computes with exactly what Python does). The median moves by at most 1/16 of a
    grey level, far below a photo's noise; the spread (3 grey levels and up) by 1/2000 of itself."""
    return np.asarray(a, np.float32).astype(np.float16).astype(np.float32)


def fit(faces: np.ndarray, threads: int = 1) -> ProductModel:
    """The genuine-variation model of one product from its aligned genuine faces (n, h, w, 3) uint8."""
    faces = faces[reference_indices(len(faces))]
    m = np.median(faces.astype(np.float32), axis=0)
    m = half(np.median(np.stack(_map(lambda f: _refine(f.astype(np.float32), m), faces, threads)), axis=0))
    ref = high_passes(m)
    res = np.stack(_map(lambda f: residual(f, m, ref), faces, threads))
    spread = half(np.maximum(1.4826 * np.median(np.abs(res), axis=0), FLOOR))
    raw = np.array([_pool(np.abs(r) / spread) for r in res])
    centre = float(np.median(raw))
    return ProductModel(m, spread, centre, float(max(1.4826 * np.median(np.abs(raw - centre)), 1e-3)), len(faces), ref)


def z_map(model: ProductModel, face: np.ndarray) -> np.ndarray:
    """(h, w, 4) |z| per pixel: how far each pixel is from genuine variation (luminance, chroma)."""
    return np.abs(residual(face, model.median, model.ref)) / model.spread


def score(model: ProductModel, faces: np.ndarray, threads: int = 1) -> np.ndarray:
    """Standardised anomaly score per face: 0 is a typical genuine train photo, higher is less genuine-like."""
    raw = np.array(_map(lambda f: _pool(z_map(model, f)), faces, threads), float)
    return (raw - model.centre) / model.scale


def evidence(model: ProductModel, face: np.ndarray, stride: int = 4) -> tuple[float, np.ndarray]:
    """One face's standardised score and where it comes from: the per-pixel strength max-pooled over stride x stride
    cells, the grid of the comparator's heatmap (a small defect keeps its peak)."""
    z = z_map(model, face)
    zz = _strength(z)
    h, w = zz.shape[0] // stride, zz.shape[1] // stride
    cells = zz[:h * stride, :w * stride].reshape(h, stride, w, stride).max((1, 3))
    return (_pool(z) - model.centre) / model.scale, cells.astype(np.float32)


def to_bytes(model: ProductModel) -> bytes:
    buf = io.BytesIO()
    np.savez_compressed(buf, median=model.median.astype(np.float16), spread=model.spread.astype(np.float16),
                        stats=np.array([model.centre, model.scale, model.n], np.float64))
    return buf.getvalue()


def from_bytes(blob: bytes) -> ProductModel:
    with np.load(io.BytesIO(blob)) as z:
        c, s, n = (float(v) for v in z["stats"])
        # half(): a model stored before float16 (a store made before session 15) computes as a new one does
        return ProductModel(half(z["median"]), half(z["spread"]), c, s, int(n))


def _terms(p_comparator, s, fusion: dict) -> tuple[np.ndarray, np.ndarray]:
    """The two terms of the fused logit: coef[0] x comparator logit, coef[1] x clipped variation score."""
    p = np.clip(np.asarray(p_comparator, np.float64), 1e-7, 1 - 1e-7)
    a, b = (float(v) for v in fusion["coef"])
    return a * np.log(p / (1 - p)), b * np.clip(np.asarray(s, np.float64), -SCORE_CLIP, SCORE_CLIP)


def contributions(p_comparator: float, s: float, fusion: dict) -> tuple[float, float]:
    """What each score adds to the fused logit: which evidence decided, for the reason and the heatmap."""
    c, v = _terms(p_comparator, s, fusion)
    return float(c), float(v)


def fused_p(p_comparator, s, fusion: dict):
    """p(counterfeit) from the comparator's calibrated p and the variation score s, by the logistic fusion fitted
    on val (meta["fusion"]: coef for [comparator logit, s], intercept). Arrays or floats."""
    c, v = _terms(p_comparator, s, fusion)
    out = 1.0 / (1.0 + np.exp(-(c + v + float(fusion["intercept"]))))
    return float(out) if out.ndim == 0 else out
