"""Rectification: find the product's face in a photo and warp it into its template's frame.

A template is a product's genuine face (the brand's artwork, a catalogue image, or a median of aligned genuine
photos) with its SIFT keypoints. A photo is matched against every template (ratio test, MAGSAC homography,
geometric sanity checks); distinctive keypoints name the product. The named product's face is then fitted from ORB
keypoints exactly as the officer's page fits it (infer/orb.py; SIFT's fit where ORB aligns none), refined by ECC,
and warped from the full-resolution decode, so fine print keeps the photo's pixels instead of a 384 px letterbox's.

    templates = TemplateSet([Template.from_image("acme-tea", artwork)])
    r = rectify(load_photo("IMG_0001.jpg"), templates)
    r.ok, r.product, r.inliers, r.reason     # r.face: (h, w, 3) uint8 in the template's frame

Coordinates are OpenCV's: pixel (0, 0)'s centre is at (0, 0). `H` maps template-image coordinates to
full-resolution photo coordinates. Keypoints, templates and their indices live in infer/keypoints.py.
Torch-free (OpenCV + numpy): it runs on the handheld.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

import cv2
import numpy as np
from PIL import Image

from genuine.infer import keypoints, orb
from genuine.infer.keypoints import (  # noqa: F401 (API)
    FACE_SIDE,
    MAX_FEATURES,
    RectifyError,
    Template,
    TemplateSet,
    match,
    pixel_scaling,
    shrink,
    sift,
)
from genuine.infer.photo import load_photo_scaled

RIVAL_RATIO = 0.8            # a second product with this share of the best fit's inliers is a rival
MATCH_SIDE = 512             # photos: 100% of 12 MP SynthPack photos at 512, 99% at 768 and 1.5x the time
PAD = 114                    # what a face shows where the photo has no pixels (infer.preprocess's grey)

LIMITS = {
    # Identification by distinctive keypoints (TemplateSet.distinctive): the best product's homography holds at
    # least min_evidence of them, and margin x the runner-up's. Real shop photos of right products reach 10-115
    # (grocery val, 31 products), photos of SynthPack products with no template reach 9-20 against 3 look-alike
    # templates (tests/test_rectify.py): below 20 the face must also agree with its template (min_agreement).
    "min_evidence": 20,
    "margin": 1.5,
    "min_face_inliers": 8,   # plain matches aligning the named product's face template
    "min_inliers": 15,       # without distinctive evidence: chance alignments of unrelated products reach ~10
    "min_inlier_ratio": 0.2,
    "min_area": 0.04,        # package / photo area: smaller gives too few pixels on the face
    # Share of the face whose pixels are inside the photo. A tight crop of a flat item (a banknote, a label filling
    # the frame) is a normal photo: the part outside is filled from the template (no evidence either way).
    "min_visible": 0.6,
    "max_aspect_change": 2.5,
    "max_reproj_px": 4.0,    # median inlier error at the matching scale
    # Correlation of edge maps (face vs template, 96 px wide). SynthPack medium 384 px: the right product
    # 0.69 at the lowest of 380 photos; another product, when its template alone is offered and aligns on
    # the shared barcode and fine print, 0.64 at the highest of 151 (bench/rectify.py).
    "min_agreement": 0.66,
    "not_covered_keypoints": 150,  # a photo this textured that matches nothing shows an unknown product
}
ADVICE = {
    "no_package": "package not found: fill the frame with the label and hold it square-on",
    "not_covered": "product not covered: no reference template matches this package (add its template with "
                   "genuine references add --template)",
    "ambiguous": "product unknown: two products match this photo about equally; photograph the side that tells "
                 "them apart, square-on and closer",
    "misaligned": "package found but could not be aligned: hold it square-on, flat and in focus, and retake",
    "small": "package too small in the photo: move closer so that the label fills the frame",
    "cut": "part of the package is outside the photo: step back or centre it and retake",
}


@dataclass
class Rectified:
    ok: bool
    product: str | None = None
    reason_code: str | None = None
    reason: str | None = None
    inliers: int = 0
    matches: int = 0
    keypoints: int = 0
    H: np.ndarray | None = None          # template pixels -> full-resolution photo pixels
    corners: np.ndarray | None = None    # the template's corners in the photo (TL, TR, BR, BL)
    scale: float = 0.0                   # photo pixels per template pixel (< 1: the face is upsampled)
    visible: float = 0.0
    reproj_px: float = 0.0
    area: float = 0.0
    agreement: float = 0.0               # edge-map correlation of face and template (look-alikes score low)
    refined_px: float = 0.0              # how far ECC moved the corners (template px); -1: not refined (refine)
    start: str = ""                      # where the homography ECC refines came from: "orb" (the page's) or "sift"
    density: float = 0.0                 # photo pixels per pixel of the model's input (rectify_photo); 0 unknown
    candidates: list = field(default_factory=list)   # [(product, distinctive inliers)] best first
    evidence: int = 0                    # distinctive inliers of the best product (identification)
    identified: str | None = None        # the product the photo shows, also when its face cannot be inspected
    face: np.ndarray | None = None
    sharp: np.ndarray | None = None      # the face at the template's resolution (capped), for the zone checks
    template: Template | None = None
    seconds: float = 0.0

    @property
    def quality(self) -> float:
        """0..1: how much to trust the alignment (inliers, their error, how much of the face is in the photo)."""
        if self.H is None:
            return 0.0
        return float(min(1.0, self.inliers / 60) * min(1.0, self.visible) * np.exp(-self.reproj_px / 4))

    def to_dict(self) -> dict:
        r = lambda v, d=3: None if v is None else round(float(v), d)  # noqa: E731
        return {"product": self.product if self.ok else None, "ok": self.ok, "reason_code": self.reason_code,
                "reason": self.reason, "inliers": self.inliers, "matches": self.matches, "keypoints": self.keypoints,
                "quality": r(self.quality), "scale": r(self.scale), "visible": r(self.visible),
                "reproj_px": r(self.reproj_px), "area": r(self.area, 4), "agreement": r(self.agreement),
                "density": r(self.density), "refined_px": r(self.refined_px, 2), "start": self.start or None,
                "corners": None if self.corners is None else np.round(self.corners, 2).tolist(),
                "H": None if self.H is None else np.round(self.H, 8).tolist(),
                "template": self.template.key if self.ok and self.template is not None else None,
                "candidates": [[p, n] for p, n in self.candidates], "evidence": self.evidence,
                "identified": self.identified,
                "closest": self.candidates[0][0] if self.candidates and not self.ok else None,
                "seconds": r(self.seconds, 4)}


def _homography(kp: np.ndarray, t: Template, q, k):
    """MAGSAC homography template -> photo keypoints' frame from matches (photo keypoints q, template keypoints k):
    (H, inlier mask), or (None, None)."""
    if len(q) < 4:
        return None, None
    src, dst = t.keypoints[k].astype(np.float64), kp[q].astype(np.float64)
    H, mask = cv2.findHomography(src, dst, cv2.USAC_MAGSAC, 2.5, maxIters=2000, confidence=0.999)
    return (None, None) if H is None else (H, mask.ravel().astype(bool))


def _fit(kp: np.ndarray, desc: np.ndarray, t: Template):
    """Homography template -> photo keypoints' frame from ratio-test matches: (H, inliers, matches, median error)."""
    good = match(desc, t.descriptors)
    q, k = [m.queryIdx for m in good], [m.trainIdx for m in good]
    H, inl = _homography(kp, t, q, k)
    if H is None:
        return None, 0, len(good), 0.0
    src, dst = t.keypoints[k][inl].astype(np.float64), kp[q][inl].astype(np.float64)
    proj = cv2.perspectiveTransform(src[None], H)[0]
    err = float(np.median(np.linalg.norm(proj - dst, axis=1))) if inl.any() else 0.0
    return H, int(inl.sum()), len(good), err


def frame_corners(w: int, h: int) -> np.ndarray:
    return np.array([[-0.5, -0.5], [w - 0.5, -0.5], [w - 0.5, h - 0.5], [-0.5, h - 0.5]], np.float64)


def _geometry(H: np.ndarray, t: Template, photo_wh: tuple[int, int], lim: dict) -> tuple[str | None, dict]:
    """Sanity of a homography: not folded or mirrored, plausible area and aspect, mostly inside the photo."""
    w, h = t.size
    c = cv2.perspectiveTransform(frame_corners(w, h)[None], H)[0]
    pw, ph = photo_wh
    edges = np.roll(c, -1, axis=0) - c
    cross = edges[:, 0] * np.roll(edges, -1, axis=0)[:, 1] - edges[:, 1] * np.roll(edges, -1, axis=0)[:, 0]
    area = 0.5 * abs(float(np.sum(c[:, 0] * np.roll(c[:, 1], -1) - np.roll(c[:, 0], -1) * c[:, 1])))
    info = {"corners": c, "area": area / (pw * ph), "scale": float(np.sqrt(area / (w * h)))}
    # Visible share of the face: sample it on a grid and look where each point falls in the photo.
    gx, gy = np.meshgrid(np.linspace(0, w - 1, 24), np.linspace(0, h - 1, 24))
    p = cv2.perspectiveTransform(np.stack([gx.ravel(), gy.ravel()], 1)[None].astype(np.float64), H)[0]
    info["visible"] = float(np.mean((p[:, 0] >= -0.5) & (p[:, 0] <= pw - 0.5) & (p[:, 1] >= -0.5) & (p[:, 1] <= ph - 0.5)))
    if not np.all(cross > 0):
        return "misaligned", info   # folded (not convex) or mirrored: not a view of a flat face
    sides = np.linalg.norm(edges, axis=1)
    aspect = ((sides[0] + sides[2]) / 2) / max(1e-6, (sides[1] + sides[3]) / 2) / (w / h)
    if not 1 / lim["max_aspect_change"] <= aspect <= lim["max_aspect_change"]:
        return "misaligned", info
    if info["area"] < lim["min_area"]:
        return "small", info
    if info["visible"] < lim["min_visible"]:
        return "cut", info
    return None, info


def _edges(rgb: np.ndarray) -> np.ndarray:
    g = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)
    return np.hypot(cv2.Sobel(g, cv2.CV_32F, 1, 0), cv2.Sobel(g, cv2.CV_32F, 0, 1))


_EDGES: dict = {}   # (id(template image), side) -> (image, its edge map): once per template per process


def _inside(photo_shape, H: np.ndarray, t: Template, fw: int, fh: int) -> np.ndarray:
    """(fh, fw) uint8, 255 where a face of that size in t's frame has photo pixels (H: template -> photo)."""
    Hf = H @ np.linalg.inv(pixel_scaling(fw / t.size[0], fh / t.size[1]))
    return cv2.warpPerspective(np.full(photo_shape[:2], 255, np.uint8), Hf, (fw, fh),
                               flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP)


def agreement(photo: np.ndarray, H: np.ndarray, t: Template, side: int = 96) -> float:
    """Correlation of the edge maps of the aligned face and the template at low resolution, over the part of
    the face that lies inside the photo.

    Inliers alone do not tell a product from its look-alike: products of one brand share a barcode, fine
    print and layout, and a homography aligns those. The whole face must agree too. Colour, ink and small
    defects barely move it (a counterfeit still aligns); another wordmark, logo or layout does."""
    fw, fh = t.face_size(side)
    key = (id(t.image), side)
    if key not in _EDGES or _EDGES[key][0] is not t.image:
        if len(_EDGES) > 512:
            _EDGES.clear()
        _EDGES[key] = (t.image, _edges(cv2.resize(t.image, (fw, fh), interpolation=cv2.INTER_AREA)))
    inside = _inside(photo.shape, H, t, fw, fh)
    m = cv2.erode(inside, np.ones((3, 3), np.uint8)) > 0   # the border of the photo is an edge of its own
    if m.sum() < 0.25 * fw * fh:
        return 0.0
    a, b = _edges(warp_face(photo, H, t, side))[m], _EDGES[key][1][m]
    return float(np.mean((a - a.mean()) / (a.std() + 1e-6) * (b - b.mean()) / (b.std() + 1e-6)))


def warp_face(photo: np.ndarray, H: np.ndarray, t: Template, face_side: int | None = FACE_SIDE) -> np.ndarray:
    """The photo's pixels in the template's frame, at face_size(face_side): (h, w, 3) uint8.

    A perspective warp interpolates without a prefilter: bilinear sampling of a photo that has more pixels
    than the face aliases and softens fine print. When the photo has at least 1.5 pixels per face pixel, the
    face is warped at twice its size from a copy shrunk (area averaging) to ~3 photo pixels per face pixel,
    then halved with area averaging: measured sharper and closer to the artwork than a direct warp."""
    fw, fh = t.face_size(face_side)
    Hf = H @ np.linalg.inv(pixel_scaling(fw / t.size[0]))        # face pixels -> photo pixels
    w, h = t.size
    area = cv2.contourArea(cv2.perspectiveTransform(frame_corners(w, h)[None], H)[0].astype(np.float32))
    density = np.sqrt(area / (fw * fh))                       # photo pixels per face pixel
    over = 2 if density >= 1.5 else 1
    Hf = Hf @ np.linalg.inv(pixel_scaling(over))
    shrink = 1.5 * over / density
    if shrink < 0.8:
        photo = cv2.resize(photo, (max(1, round(photo.shape[1] * shrink)), max(1, round(photo.shape[0] * shrink))),
                           interpolation=cv2.INTER_AREA)
        Hf = pixel_scaling(shrink) @ Hf
    face = cv2.warpPerspective(photo, Hf, (fw * over, fh * over), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                               borderMode=cv2.BORDER_CONSTANT, borderValue=(PAD, PAD, PAD))
    return face if over == 1 else cv2.resize(face, (fw, fh), interpolation=cv2.INTER_AREA)


def _evidence(kp: np.ndarray, desc: np.ndarray, ts: TemplateSet):
    """Which products the photo shows, by distinctive keypoints (TemplateSet.distinctive): [(product, inliers,
    template index)] best first, for the SHORTLIST products with most distinctive matches; each product's number is
    its best template's homography inliers among the matches that are distinctive of it."""
    pairs, votes = ts.distinctive(desc)
    per: dict[str, int] = {}
    for i, (q, _) in pairs.items():
        per[ts.templates[i].product] = per.get(ts.templates[i].product, 0) + len(q)
    top = keypoints.SHORTLIST   # read at call time: bench/rectify.py --shortlist measures other values
    keep = set(sorted(per, key=lambda p: -per[p])[:top])
    best: dict[str, tuple[int, int]] = {}
    for i, (q, k) in pairs.items():
        p = ts.templates[i].product
        if p in keep:
            inl = _homography(kp, ts.templates[i], q, k)[1]
            n = 0 if inl is None else int(inl.sum())
            if n > best.get(p, (-1, -1))[0]:
                best[p] = (n, i)
    ranked = sorted(((p, n, i) for p, (n, i) in best.items()), key=lambda x: -x[1])
    # Look-alikes that share their print get no distinctive votes: their nearest-descriptor votes shortlist them.
    raw = [ts.products[j] for j in np.argsort(-votes)[:top] if votes[j] > 0]
    return ranked, raw


def _face_fits(kp, desc, ts: TemplateSet, products, to_full, photo_size, small, lim) -> list:
    """Every face template (not a view) of `products` fitted on all its ratio-test matches, best first:
    [(inliers, matches, error, H at matching scale, template, geometry code, geometry info, agreement)]."""
    out = []
    for i in ts.faces:
        t = ts.templates[i]
        if t.product not in products:
            continue
        Hs, n, m, err = _fit(kp, desc, t)
        if Hs is None:
            out.append((n, m, err, None, t, "misaligned", {}, 0.0))
            continue
        code, info = _geometry(to_full @ Hs, t, photo_size, lim)
        agree = agreement(small, Hs, t) if code != "misaligned" else 0.0
        out.append((n, m, err, Hs, t, code, info, agree))
    return sorted(out, key=lambda f: -f[0])


def _face_ok(f, lim) -> bool:
    """A face fit good enough to inspect against: inliers, their share and error, a plausible geometry."""
    n, m, err, Hs, _, code, _, _ = f
    return (Hs is not None and n >= lim["min_face_inliers"] and n >= lim["min_inlier_ratio"] * m
            and err <= lim["max_reproj_px"] and code != "misaligned")


def rectify(photo, templates: TemplateSet, product: str | None = None, face_side: int | None = FACE_SIDE,
            limits: dict | None = None, with_face: bool = True, match_side: int | None = None) -> Rectified:
    """Find which product is in the photo and where its face is; warp the face into that template's frame.

    Which product: keypoints distinctive of one product (TemplateSet.distinctive) vote for it; a product is named
    when its best template's homography holds at least `min_evidence` of them and `margin` times the runner-up's.
    Failing that, a face that aligns with at least `min_inliers` plain matches and agrees as a whole face with its
    template (edge maps) names its product, unless another product's template fits about as well ("ambiguous").
    Where: the named product's face templates (not its identification views) fitted on all their matches.

    photo: full-resolution RGB (PIL image or (H, W, 3) uint8); product: only that product's templates."""
    t0 = time.perf_counter()
    lim = {**LIMITS, **(limits or {})}
    rgb = np.asarray(photo.convert("RGB") if isinstance(photo, Image.Image) else photo)
    ph, pw = rgb.shape[:2]
    # One small copy serves matching and the agreement check; only the final warp reads the full decode.
    small, s = shrink(rgb, match_side or MATCH_SIDE)
    kp, desc = sift(cv2.cvtColor(small, cv2.COLOR_RGB2GRAY), MAX_FEATURES)
    to_full = np.linalg.inv(pixel_scaling(s))
    ts = templates if product is None else templates.only(product)
    if ts is None:
        return Rectified(False, None, "not_covered", f"product {product!r} has no template; "
                         f"known: {', '.join(templates.products)}", keypoints=len(kp), seconds=time.perf_counter() - t0)
    out = Rectified(False, keypoints=len(kp))
    ranked, raw = _evidence(kp, desc, ts) if len(kp) >= 8 else ([], [])
    out.candidates = [(p, n) for p, n, _ in ranked][:3]
    out.evidence = ranked[0][1] if ranked else 0
    fitting = (kp, desc, ts, to_full, (pw, ph), small, lim)
    if ranked and ranked[0][1] >= lim["min_evidence"] and ranked[0][1] >= lim["margin"] * _runner_up(ranked):
        named, code, extra, fit = _by_evidence(out, ranked[0][0], fitting)
    else:
        named, code, extra, fit = _by_whole_face(out, ranked, raw, product, fitting)
    out.identified = named
    if ORB_START and named is not None and code in (None, "misaligned"):
        # The face's start from ORB, as the page computes it (infer/orb.py): both sides then refine the same start
        # to the same face. Where ORB aligns no face template of the product, SIFT's fit stays.
        start = _orb_fit(rgb, ts, named, s, (pw, ph), small, lim, fit)
        if start is not None:
            fit, code, extra = start, None, ""
    if fit is not None and code != "ambiguous":
        code = _place(out, named, fit, rgb, to_full, face_side if with_face else False)
    elif named is not None and code is None:
        code = "misaligned"
    if code is not None:
        _refusal(out, code, named, extra, lim)
    out.seconds = time.perf_counter() - t0
    return out


def _runner_up(ranked: list) -> int:
    return ranked[1][1] if len(ranked) > 1 else 0


def _orb_fit(rgb: np.ndarray, ts: TemplateSet, named: str, s: float, photo_wh, small: np.ndarray, lim: dict,
             sift_fit=None):
    """The named product's face templates fitted from ORB keypoints exactly as the page fits them (rectify.js
    faceFits: most inliers first, the first that passes _face_ok), expressed at the SIFT matching scale `s` like any
    other fit; None where ORB aligns none of them, or where SIFT's fit of the same template puts a corner more than
    ORB_AGREE of the face's width away (ORB's fit is then the wrong one: bench/start.py). Start "orb" is set by
    _place."""
    photo = orb.describe_photo(rgb, shrunk=(small, s))
    to_full = np.linalg.inv(pixel_scaling(photo.scale))
    fits = []
    for i in ts.faces:
        t = ts.templates[i]
        if t.product != named:
            continue
        f = orb.face_fit(photo, t)
        if f.H is None:
            continue
        code, info = _geometry(to_full @ f.H, t, photo_wh, lim)
        fits.append((f.inliers, f.matches, f.err, pixel_scaling(s) @ to_full @ f.H, t, code, info, 0.0))
    f = next((f for f in sorted(fits, key=lambda f: -f[0]) if _face_ok(f, lim)), None)
    if f is None:
        return None
    if sift_fit is not None and sift_fit[3] is not None and sift_fit[4] is f[4]:
        c = frame_corners(*f[4].size)[None]
        a, b = cv2.perspectiveTransform(c, sift_fit[3])[0], cv2.perspectiveTransform(c, f[3])[0]
        if np.linalg.norm(a - b, axis=1).max() > ORB_AGREE * np.linalg.norm(a[1] - a[0]):
            return None
    return (*f[:7], agreement(small, f[3], f[4]), "orb")


def _by_evidence(out: Rectified, named: str, fitting: tuple):
    """The product named by its distinctive keypoints: its face templates fitted on all their matches.
    (named, refusal code or None, extra reason text, the face fit or None)."""
    kp, desc, ts, to_full, photo_wh, small, lim = fitting
    fits = _face_fits(kp, desc, ts, {named}, to_full, photo_wh, small, lim)
    fit = next((f for f in fits if _face_ok(f, lim)), None)
    if fit is None and fits:
        out.inliers, out.matches, out.reproj_px = fits[0][0], fits[0][1], fits[0][2]
    extra = ""
    if not any(not t.view for t in ts.templates if t.product == named):
        extra = f" (identified as {named} from its photos; it has no face template to inspect against)"
    return named, None if fit is not None else "misaligned", extra, fit


def _by_whole_face(out: Rectified, ranked: list, raw: list, product: str | None, fitting: tuple):
    """Weak distinctive evidence: a face that aligns and agrees with its template as a whole names its product,
    unless a second product fits as well (look-alikes that share all their print, a store mix-up).
    (named or None, refusal code or None, extra reason text, the face fit or None)."""
    kp, desc, ts, to_full, photo_wh, small, lim = fitting
    cands = {p for p, _, _ in ranked[:2]} | set(raw)
    tried = _face_fits(kp, desc, ts, cands, to_full, photo_wh, small, lim)
    fits = [f for f in tried if _face_ok(f, {**lim, "min_face_inliers": lim["min_inliers"]})]
    whole = [f for f in fits if f[7] >= lim["min_agreement"]]
    if whole:
        fit, named = whole[0], whole[0][4].product
        rival = next((f for f in whole[1:] if f[4].product != named and f[0] >= RIVAL_RATIO * fit[0]
                      and f[7] >= fit[7] - 0.05), None)
        if rival is not None:   # two products fit about equally well: naming either would be a guess
            return None, "ambiguous", f" ({fit[4].product}: {fit[0]} inliers, {rival[4].product}: {rival[0]})", fit
        return named, None, "", fit
    if ranked and ranked[0][1] >= lim["min_evidence"]:
        return None, "ambiguous", (f" ({ranked[0][0]}: {ranked[0][1]} distinctive keypoints, {ranked[1][0]}: "
                                   f"{_runner_up(ranked)}; {lim['margin']:g}x needed)"), None
    out.inliers = max((f[0] for f in tried), default=0)
    # A detailed photo that matches no template shows another product; a plain or blurred one shows nothing.
    code = "not_covered" if out.keypoints >= lim["not_covered_keypoints"] else "no_package"
    if product is not None and code == "not_covered":
        code = "misaligned"   # the product is known and has a template: the photo, not the store, fell short
    return None, code, "", None


# The keypoint homography is refined by ECC (dense intensity alignment of the template and the photo warped onto
# it, findTransformECC): the comparator reads a misalignment of a pixel or two as a difference (on SynthPack 1600,
# SIFT's and ORB's homographies of the same photo, 1.5-25 px apart, gave p 0.45 / 0.49 and 0.51 / 0.82). ECC does
# not bring every start to the same optimum (from SIFT's start and the page's ORB start, 1-8 px apart on 5 of 96
# photos), so the start is shared with the page (ORB_START, infer/orb.py) and so is ECC (web/site/ecc.js ports
# OpenCV 5's). At ECC_SIDE on the template's long side, the photo at twice that. GENUINE_ECC=0 in the environment
# turns it off (to measure the lever: worker processes read it too).
REFINE = os.environ.get("GENUINE_ECC", "1") != "0"
# GENUINE_START=sift keeps SIFT's fit as ECC's start (to measure the shared ORB start: infer/orb.py).
ORB_START = os.environ.get("GENUINE_START", "orb") != "sift"
# ORB's fit is not taken where SIFT's fit of the same template puts a corner further away than this share of the
# face's width (both fits are then right within their accuracy, and the page's is taken). SynthPack, 383 photos: the
# fits are 0.42% apart at the median, 2.1% at p99, and the 4 beyond 2% were ORB's misfits (13, 4.1, 2.6, 1.2% from the
# truth, SIFT's 0.2-0.9%). Real shop photos against catalogue images: a median 19% apart (curved and boxed packages
# hold no single homography); taking ORB's fit there anyway made Python's faces worse (the comparator's p higher on
# 38 of 56 genuine photos, one called SUSPECT), so there Python keeps SIFT's and the page its own
# (BENCHMARKS.md, session 15).
ORB_AGREE = 0.02
ECC_SIDE = 512
ECC_CRITERIA = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 50, 1e-5)
ECC_BLUR = 5                 # findTransformECC's gaussFiltSize
ECC_MAX_MOVE = 0.03          # a refinement moving a corner further (share of the template's diagonal) is refused


def alignment() -> str:
    """What decides an aligned face's pixels besides the photo and template (train/faces.py keys its cache by it):
    ECC or not, at what side, with the float32 grey warp (session 15), from which start."""
    return (f"ecc{ECC_SIDE}-grey" if REFINE else "keypoints") + (f"-orb{orb.POLISH}-{ORB_AGREE}" if ORB_START else "")


def refine(rgb: np.ndarray, H: np.ndarray, t: Template, side: int = ECC_SIDE) -> tuple[np.ndarray, float]:
    """(H refined by ECC, how far it moved the template's corners in template pixels); H itself, with -1, where ECC
    does not converge or moves the face implausibly far. H: template pixels -> rgb's pixels."""
    k = min(1.0, side / max(t.size))
    small, s = shrink(rgb, 2 * side)
    T, P = pixel_scaling(k), pixel_scaling(s)
    A = P @ H @ np.linalg.inv(T)                     # template at `side` -> photo at 2 x side
    w, h = max(1, round(t.size[0] * k)), max(1, round(t.size[1] * k))
    grey = lambda x: cv2.cvtColor(x, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255   # noqa: E731
    # grey first, then a float32 warp (cv2's exact bilinear weights; web/site/ecc.js ports it for the page)
    warped = cv2.warpPerspective(grey(small), A, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)
    tw = cv2.resize(t.image, (w, h), interpolation=cv2.INTER_AREA) if k < 1 else t.image
    try:
        _, W = cv2.findTransformECC(grey(tw), warped, np.eye(3, dtype=np.float32), cv2.MOTION_HOMOGRAPHY,
                                    ECC_CRITERIA, None, ECC_BLUR)
    except cv2.error:
        return H, -1.0
    c = frame_corners(w, h)
    moved = float(np.max(np.linalg.norm(cv2.perspectiveTransform(c[None], W.astype(np.float64))[0] - c, axis=1))) / k
    if not np.isfinite(moved) or moved > ECC_MAX_MOVE * float(np.hypot(*t.size)):
        return H, -1.0
    return np.linalg.inv(P) @ A @ W.astype(np.float64) @ T, moved


def _place(out: Rectified, named: str, fit: tuple, rgb: np.ndarray, to_full: np.ndarray, face_side) -> str | None:
    """Fill `out` from the chosen face fit (H in full-photo pixels, corners, geometry), refine H by ECC when it
    passed the geometry checks, and warp the face unless face_side is False; returns the geometry's refusal code
    (small, cut) or None."""
    n, m, err, Hs, t, gcode, info, agree = fit[:8]
    out.start = fit[8] if len(fit) > 8 else "sift"
    H = to_full @ Hs
    out.product, out.inliers, out.matches, out.reproj_px, out.H, out.template = named, n, m, err, H, t
    out.corners, out.area, out.scale, out.visible = info["corners"], info["area"], info["scale"], info["visible"]
    out.agreement = agree
    if gcode is None:
        out.ok = True
        if REFINE:
            H, out.refined_px = refine(rgb, H, t)
            out.H = H
            out.corners = cv2.perspectiveTransform(frame_corners(*t.size)[None], H)[0]
        if face_side is not False:
            out.face = warp_face(rgb, H, t, face_side)
            if out.visible < 1.0:   # a tight crop: what lies outside the photo is no evidence either way
                out.face = _fill_outside(out.face, rgb.shape, H, t)
    return gcode


def _refusal(out: Rectified, code: str, named: str | None, extra: str, lim: dict) -> None:
    out.reason_code, out.reason = code, ADVICE[code] + extra
    if named is not None and code != "ambiguous":
        out.product = named
        out.reason = f"{named}: " + out.reason
    if code == "not_covered" and out.candidates and out.candidates[0][1] >= 4:
        out.reason = unrecognised(out.candidates, lim)


def unrecognised(candidates: list, lim: dict) -> str:
    """The refusal of a photo with some evidence for a stored product, below what naming it needs. "Not covered"
    alone would send a trainer to add a template that is already there (a photo training logged as misaligned read
    so in a scan): name the closest product, the evidence against what is needed, and the way out either way."""
    (closest, n), (_, n2) = candidates[0], (candidates[1:] or [(None, 0)])[0]
    return (f"product not covered, or not recognised: the closest template is {closest} ({n} distinctive keypoints, "
            f"runner-up {n2}; {lim['min_evidence']} and {lim['margin']:g}x needed). If it is {closest}, retake it "
            f"square-on, in focus and filling the frame, or name it (genuine inspect --product {closest}); if not, "
            f"it has no template yet (genuine references add --template)")


def _fill_outside(face: np.ndarray, photo_shape, H: np.ndarray, t: Template) -> np.ndarray:
    """The face with the pixels that lie outside the photo taken from the template: neither the comparator nor the
    genuine variation sees a difference where the photo shows nothing (a tight crop of a flat item)."""
    fh, fw = face.shape[:2]
    inside = _inside(photo_shape, H, t, fw, fh) > 0
    if inside.all():
        return face
    ref = cv2.resize(t.image, (fw, fh), interpolation=cv2.INTER_AREA)
    return np.where(inside[..., None], face, ref)


SHARP_DECODE = 1200   # short side a photo is decoded at when its sharp face is kept (rectify_photo)


def model_face_side(face_size) -> int:
    """Long side at which to warp a face for a model whose input is face_size (W, H): twice the input, so the
    final area resize (preprocess.face_input) anti-aliases, as warp_face's own supersampling does."""
    return 2 * max(int(v) for v in face_size)


def rectify_photo(src, templates: TemplateSet, face_size, product: str | None = None,
                  limits: dict | None = None, sharp_side: int = 0) -> tuple[Rectified, float]:
    """The comparator's one input path from a file to its face, for the inspector, scans, training and evaluate:
    (Rectified with its face and density, decode seconds). Raises infer.photo.PhotoError.

    A JPEG is decoded DCT-scaled (libjpeg draft) to the smallest size whose short side still holds
    model_face_side and MATCH_SIDE (matching keeps its keypoints): a 12 MP photo decodes at 1/4 in a fifth of
    the time, and a package that passes rectify's min_area still gets >= 0.6 photo pixels per input pixel.
    Smaller photos decode as they are.

    sharp_side > 0 also keeps the face at the template's resolution, long side capped at sharp_side (r.sharp), for
    the zone checks that read print (barcode, text): the photo is then decoded with SHARP_DECODE pixels on its
    short side at least (a 12 MP JPEG at 1/2), so a package filling half the frame still has ~1 photo pixel per
    face pixel."""
    side = model_face_side(face_size)
    t0 = time.perf_counter()
    img, (fx, fy) = load_photo_scaled(src, min_side=max(side, MATCH_SIDE, SHARP_DECODE if sharp_side else 0))
    seconds = time.perf_counter() - t0
    rgb = np.asarray(img)
    r = rectify(rgb, templates, product=product, face_side=side, limits=limits)
    if r.ok and sharp_side:
        r.sharp = warp_face(rgb, r.H, r.template, min(int(sharp_side), max(r.template.size)))
        if r.visible < 1.0:
            r.sharp = _fill_outside(r.sharp, rgb.shape, r.H, r.template)
    if r.ok:
        w, h = r.template.size
        r.density = float(r.scale * np.sqrt(w * h / (int(face_size[0]) * int(face_size[1]))))
    if r.H is not None and (fx, fy) != (1.0, 1.0):   # H and corners in the full photo's pixels, as documented
        r.H = pixel_scaling(fx, fy) @ r.H
        r.corners = cv2.perspectiveTransform(frame_corners(*r.template.size)[None], r.H)[0]
    return r, seconds
