"""What templates and photos are matched by: SIFT keypoints and descriptors, templates, FLANN indices.

    t = Template.from_image("acme-tea", artwork)     # the genuine face and its keypoints
    ts = TemplateSet([t, ...])                       # shortlists likely templates for a photo
    kp, desc = describe(rgb, side=512)               # keypoints in rgb's own pixel coordinates

Coordinates are OpenCV's: pixel (0, 0)'s centre is at (0, 0). Torch-free; infer/rectify.py uses it.
"""
from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image

from genuine.infer.errors import GenuineError

KP_VERSION = "rootsift-768-v2"   # stored with keypoints: a store recomputes (or upgrades) them when this changes
SIFT_V1 = "sift-768-v1"      # the same keypoints with plain SIFT descriptors: upgraded in place (root_sift)
KP_SIDE = 768                # templates are described on a grey copy of this long side
MAX_FEATURES = 3000
FACE_SIDE = 1024             # default long side of a rectified face (the template's own size when smaller)
RATIO = 0.75                 # Lowe's ratio test
# A photo's keypoint is evidence for a product only when its nearest descriptor of that product is clearly nearer
# than its nearest descriptor of any other product: a brand's logo, barcode and fine print, shared by its look-alike
# products, vote for none of them. Grocery val photos, 31 products, catalogue + photo views: 0.8 (bench/grocery.py).
DISTINCT_RATIO = 0.8
NEIGHBOURS = 12              # nearest descriptors looked at per keypoint, across every template
SHORTLIST = 4                # products checked geometrically per photo
# FLANN leaves visited per query in the one index over every template and view (~100k descriptors for 31 products
# with 10 views each). Grocery val: 32 names the same 44 products as 64 in 56 ms instead of 89 per 1500 keypoints,
# 16 loses 7 of them; but SynthPack's look-alikes with their own template removed are accepted 8/1560 times at 32
# against 5/1560 at 64 (bench/rectify.py synth --split all --loo): a wrong product costs more than 33 ms.
CHECKS = 64
KD_SEED = 0x6E75                # FLANN's randomised trees: the same photo, the same answer in every process
MIN_KEYPOINTS = 30           # a template with fewer has no printed detail to align on


class RectifyError(GenuineError, ValueError):
    """Templates that cannot be used (no keypoints, unreadable); the message says which and why."""


def shrink(rgb: np.ndarray, side: int) -> tuple[np.ndarray, float]:
    """A copy whose long side is at most `side` (area averaging; never upsampled) and the scale applied."""
    s = min(1.0, side / max(rgb.shape[:2]))
    if s < 1.0:
        rgb = cv2.resize(rgb, (max(1, round(rgb.shape[1] * s)), max(1, round(rgb.shape[0] * s))),
                         interpolation=cv2.INTER_AREA)
    return rgb, s


def pixel_scaling(s: float, sy: float | None = None) -> np.ndarray:
    """Maps pixel-centre coordinates of an image to those of the same image resized by s (by s across and sy
    down when sy is given)."""
    sy = s if sy is None else sy
    return np.array([[s, 0, 0.5 * s - 0.5], [0, sy, 0.5 * sy - 0.5], [0, 0, 1]], np.float64)


_SIFT: dict = {}


def root_sift(desc: np.ndarray) -> np.ndarray:
    """RootSIFT (Arandjelovic & Zisserman 2012): L1-normalise, then square root. Euclidean distance between the
    results is the Hellinger distance between the histograms, which big gradient bins no longer dominate. Grocery
    val, 31 products, catalogue + views: the right product first for 71 photos instead of 68, 44 named at 0 wrong
    instead of 40 (bench/grocery.py). A pure function of the SIFT descriptor: stored v1 descriptors upgrade in place."""
    d = np.asarray(desc, np.float32)
    return np.sqrt(d / np.maximum(d.sum(axis=1, keepdims=True), 1e-7)).astype(np.float32)


def sift(grey: np.ndarray, features: int) -> tuple[np.ndarray, np.ndarray]:
    """SIFT keypoints (N, 2) of a grey image and their RootSIFT descriptors (N, 128) float32."""
    if features not in _SIFT:
        _SIFT[features] = cv2.SIFT_create(nfeatures=features)
    kps, desc = _SIFT[features].detectAndCompute(grey, None)
    if desc is None or not kps:
        return np.zeros((0, 2), np.float32), np.zeros((0, 128), np.float32)
    return np.array([k.pt for k in kps], np.float32), root_sift(desc)


def describe(rgb: np.ndarray, side: int, features: int = MAX_FEATURES) -> tuple[np.ndarray, np.ndarray]:
    """SIFT keypoints (N, 2) in `rgb`'s own pixel coordinates and descriptors (N, 128) float32."""
    small, s = shrink(rgb, side)
    pts, desc = sift(cv2.cvtColor(small, cv2.COLOR_RGB2GRAY), features)
    return ((pts + 0.5) / s - 0.5).astype(np.float32), desc   # back to the full image's pixel centres


@dataclass
class Template:
    product: str
    image: np.ndarray             # (h, w, 3) uint8 RGB: the genuine face
    keypoints: np.ndarray         # (N, 2) float32, in image pixels
    descriptors: np.ndarray       # (N, 128) float32
    source: str = ""
    view: bool = False            # a photo of the product that identifies it, not the face to inspect against

    @classmethod
    def from_image(cls, product: str, image, source: str = "") -> "Template":
        rgb = np.asarray(image.convert("RGB") if isinstance(image, Image.Image) else image)
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise RectifyError(f"template {source or product}: expected an RGB uint8 image, got {rgb.dtype} {rgb.shape}")
        kp, desc = describe(rgb, KP_SIDE, features=2 * MAX_FEATURES)
        if len(kp) < MIN_KEYPOINTS:
            raise RectifyError(f"template {source or product}: only {len(kp)} keypoints; a template needs printed "
                               f"detail (artwork, text, logos), not a plain surface")
        return cls(product, np.ascontiguousarray(rgb), kp, desc, source)

    def keep(self, mask: np.ndarray) -> "Template":
        """The same template with only the keypoints in mask (a view's package keypoints, not its background)."""
        return Template(self.product, self.image, self.keypoints[mask], self.descriptors[mask], self.source, self.view)

    @property
    def size(self) -> tuple[int, int]:
        return self.image.shape[1], self.image.shape[0]

    @functools.cached_property
    def key(self) -> str:
        """Identifies the template's pixels: genuine photos aligned to it are in its frame (infer/variation_store)."""
        h = hashlib.sha256(repr(self.image.shape).encode())
        h.update(np.ascontiguousarray(self.image).tobytes())
        return h.hexdigest()[:16]

    def face_size(self, side: int | None = FACE_SIDE) -> tuple[int, int]:
        w, h = self.size
        s = 1.0 if not side else min(1.0, side / max(w, h))
        return max(1, round(w * s)), max(1, round(h * s))


class TemplateSet:
    """Templates of one or many products, with one FLANN index over all descriptors for shortlisting."""

    def __init__(self, templates: list[Template]):
        if not templates:
            raise RectifyError("no templates: add one with genuine references add --template, or point at a dataset "
                               "root holding <product>/template.png")
        self.templates = list(templates)
        self.owner = np.concatenate([np.full(len(t.descriptors), i) for i, t in enumerate(self.templates)])
        self._index = None
        self._only: dict[str, TemplateSet | None] = {}

    def __len__(self) -> int:
        return len(self.templates)

    @property
    def products(self) -> list[str]:
        return sorted({t.product for t in self.templates})

    def only(self, product: str) -> "TemplateSet | None":
        """The templates of one product (None when it has none), kept: its index is built once, not per photo."""
        if product not in self._only:
            pool = [t for t in self.templates if t.product == product]
            self._only[product] = TemplateSet(pool) if pool else None
        return self._only[product]

    @property
    def faces(self) -> list[int]:
        """Indices of the templates a photo is inspected against (not identification views)."""
        return [i for i, t in enumerate(self.templates) if not t.view]

    def distinctive(self, desc: np.ndarray, ratio: float = DISTINCT_RATIO) -> tuple[dict, np.ndarray]:
        """Matches that are evidence for one product: ({template index: (photo keypoint indices, template keypoint
        indices)}, votes: per product of self.products, the photo keypoints whose nearest descriptor is that
        product's, distinctive or not). Each photo keypoint looks at its NEIGHBOURS nearest descriptors over every
        template (one FLANN index); it counts for the product of the nearest only when that is nearer than `ratio` x the nearest of any
        other product (Lowe's ratio test between products, not within one template), and then for each template of
        that product among the neighbours (a product with several templates: the front, other editions, photos)."""
        if len(desc) < 2:
            return {}, np.zeros(len(self.products))
        if self._index is None:
            self._index = kd_index(np.concatenate([t.descriptors for t in self.templates]), checks=CHECKS)
            names = {p: k for k, p in enumerate(self.products)}
            self._product = np.array([names[t.product] for t in self.templates])[self.owner]
            self._local = np.concatenate([np.arange(len(t.descriptors)) for t in self.templates])
        out: dict[int, tuple[list, list]] = {}
        votes = np.zeros(len(self.products))
        for q, ms in enumerate(self._index.knnMatch(desc, k=min(NEIGHBOURS, len(self.owner)))):
            if not ms:
                continue
            p0 = self._product[ms[0].trainIdx]
            votes[p0] += 1
            other = next((m.distance for m in ms if self._product[m.trainIdx] != p0), None)
            if other is not None and ms[0].distance >= ratio * other:
                continue
            seen = set()
            for m in ms:   # the nearest descriptor of each of p0's templates among the neighbours
                t = int(self.owner[m.trainIdx])
                if self._product[m.trainIdx] == p0 and t not in seen:
                    seen.add(t)
                    pair = out.setdefault(t, ([], []))
                    pair[0].append(q)
                    pair[1].append(int(self._local[m.trainIdx]))
        return {t: (np.array(a), np.array(b)) for t, (a, b) in out.items()}, votes


def kd_index(descriptors: np.ndarray, checks: int) -> cv2.FlannBasedMatcher:
    """A FLANN index of randomised KD-trees over `descriptors`, built from a fixed seed. The trees draw from
    OpenCV's global generator: unseeded, the same photo was accepted or refused depending on what the process had
    matched before (40 of 60 homographies differed between two runs)."""
    fl = cv2.FlannBasedMatcher({"algorithm": 1, "trees": 4}, {"checks": checks})
    fl.add([descriptors])
    cv2.setRNGSeed(KD_SEED)
    fl.train()
    return fl


_INDEX: dict = {}   # id(descriptors) -> (descriptors, FLANN matcher): built once per template per process


def match(desc: np.ndarray, train: np.ndarray) -> list:
    """Ratio-test matches of descriptors `desc` (queryIdx) against `train` (trainIdx: a template's, or a reference
    photo's), through a KD-tree index of `train` built on first use and kept while that array lives: 3-4x
    faster than brute force on 12 MP photos, same inliers (bench/rectify.py)."""
    if len(desc) < 2 or len(train) < 2:
        return []
    key = id(train)
    if key not in _INDEX or _INDEX[key][0] is not train:
        if len(_INDEX) > 512:   # templates reloaded many times (a store that changes): drop stale indices
            _INDEX.clear()
        _INDEX[key] = (train, kd_index(train, checks=64))
    return [m[0] for m in _INDEX[key][1].knnMatch(desc, k=2) if len(m) == 2 and m[0].distance < RATIO * m[1].distance]
