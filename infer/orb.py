"""The face's keypoint start that Python and the officer's page share: ORB keypoints, match.js's LSH matcher, MAGSAC.

Identification stays SIFT in Python (it names more real products than ORB: infer/rectify.py), but once a product is
named, the homography that ECC refines starts from the ORB fit of its face template, computed here exactly as the
page computes it (web/site/rectify.js `nearest` + `homography`, web/site/match.js `HammingIndex.knn2`): the same
keypoints (OpenCV's ORB gives the same points natively and in OpenCV.js, in another order), the same candidates (the
same hash positions, the same tie order), MAGSAC on the matches in an order both share, polished to a fixed point
(a descriptor a bit apart between the builds changes a match, and MAGSAC's samples with it). Both then refine with
OpenCV 5's ECC (web/site/ecc.js ports it), so the page and Python judge the same face: SynthPack verdicts equal on
95 of 96 photos, against 91 from SIFT's start (BENCHMARKS.md, session 15). rectify.py keeps SIFT's fit where the two
disagree (ORB's misfits; curved real packages).

    photo = describe_photo(rgb)                     # rgb: the decoded photo; keypoints at MATCH_SIDE (to_side)
    fit = face_fit(photo, template)                 # FaceFit: H (template px -> photo px at photo.scale), inliers
    pts, desc = orb_keypoints(template.image, 2 * ORB["nfeatures"], KP_SIDE)   # what the page's orb.bin holds

Torch-free (OpenCV + numpy).
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import cv2
import numpy as np

from genuine.infer.keypoints import KP_SIDE, shrink

# ORB as bench/detectors.py measured it against SIFT (BENCHMARKS.md, session 12): photos at MATCH_SIDE with
# ORB_FEATURES, templates at KP_SIDE with twice as many (as SIFT templates get 2 x MAX_FEATURES).
ORB = {"nfeatures": 3000, "scaleFactor": 1.2, "nlevels": 8, "fastThreshold": 10}
RATIO = 0.75                # Lowe's ratio test on Hamming distances (bench/detectors.py)
MAGSAC_PX = 2.5             # infer.rectify._homography's threshold at the matching scale
POLISH = 5                  # least-squares rounds after MAGSAC (homography(): the same fit from matches a bit apart)
# match.js: TABLES hash tables keyed by BITS fixed bit positions of the 256 (an LCG from SEED): a photo keypoint is
# compared only with the template descriptors that share a key with it in some table.
TABLES, BITS, SEED = 16, 12, 0x6E75


def _positions() -> np.ndarray:
    s, out = SEED, []
    for _ in range(TABLES * BITS):
        s = (s * 1664525 + 1013904223) & 0xFFFFFFFF
        out.append(s % 256)
    return np.array(out, np.int64).reshape(TABLES, BITS)


POSITIONS = _positions()
_WEIGHTS = (1 << np.arange(BITS - 1, -1, -1)).astype(np.int64)   # match.js key(): the first position is the high bit


def to_side(rgb: np.ndarray, side: int) -> tuple[np.ndarray, float]:
    """`rgb` with its long side at `side`, both ways (area averaging down, bilinear up), and the scale. ORB has no
    SIFT's doubled first octave: on a 198 px catalogue image and a 348 px shop photo it holds a median 7 inliers
    where described at 768 / 512 px it holds 40 (BENCHMARKS.md, session 14), so small images are enlarged."""
    s = side / max(rgb.shape[:2])
    if s <= 1:
        return shrink(rgb, side)
    size = (max(1, round(rgb.shape[1] * s)), max(1, round(rgb.shape[0] * s)))
    return cv2.resize(rgb, size, interpolation=cv2.INTER_LINEAR), s


def _detect(grey: np.ndarray, features: int) -> tuple[np.ndarray, np.ndarray]:
    det = cv2.ORB_create(**{**ORB, "nfeatures": features})
    kps, desc = det.detectAndCompute(grey, None)
    if desc is None or not kps:
        return np.zeros((0, 2), np.float32), np.zeros((0, 32), np.uint8)
    return np.array([k.pt for k in kps], np.float32), desc


def orb_keypoints(rgb: np.ndarray, features: int, side: int) -> tuple[np.ndarray, np.ndarray]:
    """ORB keypoints (N, 2) float32 in `rgb`'s own pixel coordinates and descriptors (N, 32) uint8, described with
    the long side at `side` (enlarged when smaller: to_side)."""
    small, s = to_side(rgb, side)
    pts, desc = _detect(cv2.cvtColor(small, cv2.COLOR_RGB2GRAY), features)
    return ((pts + 0.5) / s - 0.5).astype(np.float32), desc


def lsh_keys(desc: np.ndarray) -> np.ndarray:
    """(TABLES, N) int64: each descriptor's key in every table (match.js key(): bit p is bit p % 8 of byte p // 8)."""
    bits = np.unpackbits(np.ascontiguousarray(desc, np.uint8), axis=1, bitorder="little").astype(np.int64)
    return np.stack([bits[:, POSITIONS[t]] @ _WEIGHTS for t in range(TABLES)]) if len(desc) else \
        np.zeros((TABLES, 0), np.int64)


@dataclass
class Described:
    """ORB keypoints with their LSH keys: a photo's (at `scale` of the decoded photo) or a template's."""
    pts: np.ndarray      # (N, 2) float32
    desc: np.ndarray     # (N, 32) uint8
    keys: np.ndarray     # (TABLES, N)
    scale: float = 1.0   # matching pixels per decoded-photo pixel (photos); 1 for templates (their own pixels)

    @classmethod
    def of(cls, pts, desc, scale: float = 1.0) -> "Described":
        return cls(np.asarray(pts, np.float32), np.asarray(desc, np.uint8), lsh_keys(desc), scale)

    @functools.cached_property
    def buckets(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per table (descriptor indices sorted by key, where each key's bucket starts: 2**BITS + 1 offsets):
        match.js's counting sort, a bucket in ascending index. A template's, built once."""
        out = []
        for t in range(TABLES):
            order = np.argsort(self.keys[t], kind="stable")
            start = np.searchsorted(self.keys[t][order], np.arange((1 << BITS) + 1), "left")
            out.append((order, start))
        return out


def describe_photo(rgb: np.ndarray, side: int | None = None, shrunk: tuple | None = None) -> Described:
    """The photo's ORB keypoints as the page computes them: at MATCH_SIDE (enlarged when smaller), in that copy's
    pixels (photo.scale maps the decoded photo to it). shrunk: (image, scale) of `rgb` already shrunk to that side
    (the SIFT matching copy, rectify.py): used instead of resizing again when it is one."""
    from genuine.infer.rectify import MATCH_SIDE
    side = side or MATCH_SIDE
    if shrunk is not None and shrunk[1] < 1 and shrunk[1] == side / max(rgb.shape[:2]):   # keypoints.shrink's scale
        small, s = shrunk
    else:
        small, s = to_side(rgb, side)
    pts, desc = _detect(cv2.cvtColor(small, cv2.COLOR_RGB2GRAY), ORB["nfeatures"])
    return Described.of(pts, desc, s)


_TEMPLATES: dict = {}   # id(template image) -> (image, Described): once per template per process


def of_template(t) -> Described:
    """A face template's ORB keypoints, the same the page's orb.bin carries (page_build._template_files)."""
    key = id(t.image)
    if key not in _TEMPLATES or _TEMPLATES[key][0] is not t.image:
        if len(_TEMPLATES) > 512:
            _TEMPLATES.clear()
        _TEMPLATES[key] = (t.image, Described.of(*orb_keypoints(t.image, 2 * ORB["nfeatures"], KP_SIDE)))
    return _TEMPLATES[key][1]


def _hamming(a: np.ndarray, b: np.ndarray, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Hamming distances between descriptors a[i] and b[j] (32 bytes each): popcounts of 64-bit words (numpy 2's
    bitwise_count, 3x faster than a byte table)."""
    a64, b64 = np.ascontiguousarray(a).view(np.uint64), np.ascontiguousarray(b).view(np.uint64)
    return np.bitwise_count(a64[i] ^ b64[j]).sum(axis=1, dtype=np.int64)


def knn2(photo: Described, train: Described) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """match.js HammingIndex.knn2 for every photo keypoint: (nearest train index or -1, its distance, the second
    nearest's distance; 257 where there is none), among the train descriptors sharing a key with it in some table.
    Ties go as in match.js: to the descriptor met first, tables in order, each bucket in ascending index."""
    m, n = len(photo.desc), len(train.desc)
    b0, d0, d1 = np.full(m, -1, np.int64), np.full(m, 257, np.int64), np.full(m, 257, np.int64)
    if m == 0 or n == 0:
        return b0, d0, d1
    qs, cs, ts = [], [], []
    for t, (order, start) in enumerate(train.buckets):
        lo = start[photo.keys[t]]
        cnt = start[photo.keys[t] + 1] - lo
        total = int(cnt.sum())
        if not total:
            continue
        q = np.repeat(np.arange(m), cnt)
        within = np.arange(total) - np.repeat(np.cumsum(cnt) - cnt, cnt)
        qs.append(q)
        cs.append(order[np.repeat(lo, cnt) + within])
        ts.append(np.full(total, t))
    if not qs:
        return b0, d0, d1
    # Per photo keypoint, match.js's nearest is the least (distance, table, candidate) among its entries (a candidate
    # met again in a later table sorts after its first meeting), and its second nearest the least among the entries
    # of other candidates (match.js never compares a candidate twice). Grouped by a radix sort of the keypoint index.
    q, c, t = np.concatenate(qs), np.concatenate(cs), np.concatenate(ts)
    key = (_hamming(photo.desc, train.desc, q, c) * TABLES + t) * n + c
    o = np.argsort(q.astype(np.int16 if m < 32768 else np.int32), kind="stable")
    q, key = q[o], key[o]
    first = np.ones(len(q), bool)
    first[1:] = q[1:] != q[:-1]
    starts = np.flatnonzero(first)
    group = np.cumsum(first) - 1
    k0 = np.minimum.reduceat(key, starts)
    c0, who = k0 % n, q[starts]
    b0[who], d0[who] = c0, k0 // n // TABLES
    none = np.iinfo(np.int64).max
    k1 = np.minimum.reduceat(np.where(key % n == c0[group], none, key), starts)
    has = k1 < none
    d1[who[has]] = k1[has] // n // TABLES
    return b0, d0, d1


def ratio_matches(photo: Described, train: Described, ratio: float = RATIO) -> tuple[np.ndarray, np.ndarray]:
    """(photo indices, train indices) passing Lowe's ratio test on Hamming distances (rectify.js nearest())."""
    b0, d0, d1 = knn2(photo, train)
    ok = (d1 < 257) & (d0 < ratio * d1)
    return np.flatnonzero(ok), b0[ok]


@dataclass
class FaceFit:
    H: np.ndarray | None      # template px -> photo px at the matching scale
    inliers: int
    matches: int
    err: float                # median inlier reprojection error, matching px


def _project(H: np.ndarray, src: np.ndarray) -> np.ndarray:
    """rectify.js project(): float64, the same operations in the same order (a threshold test must agree)."""
    w = H[2, 0] * src[:, 0] + H[2, 1] * src[:, 1] + H[2, 2]
    return np.stack([(H[0, 0] * src[:, 0] + H[0, 1] * src[:, 1] + H[0, 2]) / w,
                     (H[1, 0] * src[:, 0] + H[1, 1] * src[:, 1] + H[1, 2]) / w], 1)


def homography(photo: Described, train: Described, q, k) -> FaceFit:
    """rectify.js homography() of a face fit: MAGSAC from the matches (in a shared order), then polished to a fixed point (least squares on the inliers,
    inliers re-read at MAGSAC_PX, up to POLISH times); its inliers and their median reprojection error.

    Why polished: ORB descriptors differ in a bit or two between OpenCV builds (26 of 2082 on a SynthPack photo,
    native vs OpenCV.js), which changes a match or two, and MAGSAC's samples with them: the same photo's homographies
    were up to 2 px apart at the matching scale, enough for ECC to settle 1-8 px apart on the face. Least squares on
    the inliers barely moves for one point of hundreds, and its fixed point put them within 1e-6 px."""
    if len(q) < 4:
        return FaceFit(None, 0, len(q), 0.0)
    q, k = np.asarray(q), np.asarray(k)
    # MAGSAC samples by position in the list: matches in an order both sides share (the photo keypoint's x, y, then
    # the template keypoint), not in the detector's order, which differs between OpenCV builds (std::nth_element)
    o = np.lexsort((k, photo.pts[q, 1], photo.pts[q, 0]))
    q, k = q[o], k[o]
    src, dst = train.pts[k].astype(np.float64), photo.pts[q].astype(np.float64)
    H, mask = cv2.findHomography(src, dst, cv2.USAC_MAGSAC, MAGSAC_PX, maxIters=2000, confidence=0.999)
    if H is None or H.shape != (3, 3):
        return FaceFit(None, 0, len(q), 0.0)
    inl = mask.ravel().astype(bool)
    for _ in range(POLISH):
        if inl.sum() < 4:
            break
        H2, _ = cv2.findHomography(src[inl], dst[inl], 0)
        if H2 is None or H2.shape != (3, 3):
            break
        p = _project(H2, src)
        now = np.hypot(p[:, 0] - dst[:, 0], p[:, 1] - dst[:, 1]) < MAGSAC_PX
        H, same, inl = H2, bool((now == inl).all()), now
        if same:
            break
    if not inl.any():
        return FaceFit(H, 0, len(q), 0.0)
    p = _project(H, src[inl])
    err = np.hypot(p[:, 0] - dst[inl, 0], p[:, 1] - dst[inl, 1])
    return FaceFit(H, int(inl.sum()), len(q), float(np.median(err)))


def face_fit(photo: Described, t) -> FaceFit:
    """The ORB fit of face template `t` on the photo, as the page computes it."""
    train = of_template(t)
    if len(train.desc) < 2:
        return FaceFit(None, 0, 0, 0.0)
    q, k = ratio_matches(photo, train)
    return homography(photo, train, q, k)
