"""Photograph a package as an officer's handheld would.

Every capture parameter is drawn from one distribution whatever the label, so
no capture condition can tell genuine from counterfeit (the shortcut that made a
published handbag model learn backgrounds).

    jpeg_bytes, params = photograph(package_img, rng, size=384)

Pixel work is OpenCV on uint8 arrays (float32 for the noise); what is smooth by construction (light fields,
the contact shadow, the out-of-focus background, wide blurs) is computed small and enlarged. From PHONE_SIZE up
a photo is saved as a phone delivers it: a phone's JPEG quality and luma grain, so files weigh what a phone's do.
"""
from __future__ import annotations

import io

import cv2
import numpy as np
from PIL import Image, ImageDraw

PHONE_SIZE = 1600  # from this long side up a photo is as a phone app delivers it: a phone's JPEG quality and grain


def _perspective_coeffs(dst, src) -> list[float]:
    """The 8 coefficients of the homography that maps each dst point (x, y) to its src point (u, v)."""
    rows, rhs = [], []
    for (x, y), (u, v) in zip(dst, src):
        rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        rows.append([0, 0, 0, x, y, 1, -v * x, -v * y])
        rhs += [u, v]
    return np.linalg.solve(np.array(rows, float), np.array(rhs, float)).tolist()


def _blur(x: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of standard deviation sigma px (what PIL's GaussianBlur(radius=sigma) approximates).

    A wide blur leaves no detail to keep, so from sigma 4 up it runs on a copy shrunk f ~ sigma / 2 times and
    enlarged back: the shrink's box and the enlargement's tent add a variance of about f^2 / 4, taken off."""
    f = int(sigma / 2)
    if f < 2:
        return cv2.GaussianBlur(x, (0, 0), sigma)
    h, w = x.shape[:2]
    small = cv2.resize(x, (max(1, round(w / f)), max(1, round(h / f))), interpolation=cv2.INTER_AREA)
    small = cv2.GaussianBlur(small, (0, 0), np.sqrt(sigma ** 2 - f ** 2 / 4) / f)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def _background(rng, W: int, H: int, dst: np.ndarray) -> np.ndarray:
    """A cluttered shelf or desk, out of focus: boxes, labels, stripes in random colours, with the contact shadow
    of the package whose corners are dst. (H, W, 3) uint8, drawn at a quarter of the photo's size and enlarged."""
    w, h = max(16, W // 4), max(12, H // 4)
    base = tuple(int(c) for c in rng.integers(40, 220, 3))
    bg = Image.new("RGB", (w, h), base)
    dr = ImageDraw.Draw(bg)
    for _ in range(int(rng.integers(8, 20))):
        col = tuple(int(c) for c in rng.integers(0, 256, 3))
        x0, y0 = rng.uniform(-0.2, 1.0) * w, rng.uniform(-0.2, 1.0) * h
        x1, y1 = x0 + rng.uniform(0.05, 0.5) * w, y0 + rng.uniform(0.05, 0.5) * h
        kind = rng.integers(0, 4)
        if kind == 0:
            dr.rectangle([x0, y0, x1, y1], fill=col)
        elif kind == 1:
            dr.ellipse([x0, y0, x1, y1], fill=col)
        elif kind == 2:
            dr.line([(x0, y0), (x1, y1)], fill=col, width=int(rng.integers(1, 4)))
        else:  # a label on another product: text-like dashes
            dr.rectangle([x0, y0, x1, y1], fill=col)
            ink = tuple(int(c) for c in rng.integers(0, 256, 3))
            for yy in np.arange(y0 + 2, y1 - 1, 3):
                dr.line([(x0 + 2, yy), (x0 + 2 + rng.uniform(0.3, 1) * (x1 - x0 - 4), yy)], fill=ink)
    sigma = rng.uniform(0.5, 2.5) * W / 384  # defocus in photo pixels
    bg = cv2.multiply(np.asarray(bg), _contact_shadow(dst, W, H, w, h), scale=1 / 255)
    if sigma * w / W >= 1:  # blurred before it is enlarged: as if after, on a sixteenth of the pixels
        return cv2.resize(cv2.GaussianBlur(bg, (0, 0), sigma * w / W), (W, H), interpolation=cv2.INTER_LINEAR)
    # Below one pixel of the drawing a sampled gaussian blurs nothing: blur the enlargement (small photos only).
    return cv2.GaussianBlur(cv2.resize(bg, (W, H), interpolation=cv2.INTER_LINEAR), (0, 0), sigma)


def _contact_shadow(dst: np.ndarray, W: int, H: int, w: int, h: int) -> np.ndarray:
    """The light left (255: all) on what the package lies on or stands in front of, in a (w, h) copy of the
    (W, H) photo: its silhouette, offset right and down by 1% and 1.5% of the photo's width and blurred by 2%,
    darkens it by up to 45%. (h, w, 3) uint8."""
    scale = np.array([w / W, h / H])
    corners = (dst + (int(0.01 * W), int(0.015 * W))) * scale - 0.5  # OpenCV's pixel centres are at integers
    silhouette = np.zeros((h, w), np.uint8)
    cv2.fillPoly(silhouette, [np.round(corners * 16).astype(np.int32)], 255, cv2.LINE_AA, shift=4)
    soft = _blur(silhouette, 0.02 * w)
    return cv2.cvtColor(cv2.addWeighted(soft, -0.45, soft, 0, 255), cv2.COLOR_GRAY2RGB)


def _smooth_field(rng, kind: str, strength: float) -> np.ndarray:
    """A low-frequency light field at 64 x 48 (it has no detail): enlarge it to the photo with _enlarge."""
    w, h = 64, 48
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    xx, yy = xx / w, yy / h
    if kind == "gradient":
        a = rng.uniform(0, 2 * np.pi)
        ramp = (xx - 0.5) * np.cos(a) + (yy - 0.5) * np.sin(a)
        f = 1.0 - strength * (ramp - ramp.min()) / max(1e-6, np.ptp(ramp))
    elif kind == "glare":
        cx, cy, r = rng.uniform(0.25, 0.75), rng.uniform(0.25, 0.75), rng.uniform(0.05, 0.2)
        f = strength * np.exp(-((xx - cx) ** 2 + ((yy - cy) * h / w) ** 2) / (2 * r * r))
    else:  # shadow: a soft half-plane
        a, off = rng.uniform(0, 2 * np.pi), rng.uniform(-0.3, 0.3)
        d = (xx - 0.5) * np.cos(a) + (yy - 0.5) * np.sin(a) - off
        f = 1.0 - strength / (1 + np.exp(-d / rng.uniform(0.01, 0.06)))
    return f.astype(np.float32)


def _enlarge(field: np.ndarray, W: int, H: int) -> np.ndarray:
    return cv2.resize(field, (W, H), interpolation=cv2.INTER_LINEAR)


def _soften(p: dict, k: float) -> dict:
    """Capture strength k < 1 pulls every nuisance towards a clean, close, square-on shot (a curriculum)."""
    toward = {"scale": 0.9, "exposure": 1.0, "jpeg_quality": 95}
    for key, v in p.items():
        if key in ("wb_r", "wb_b"):
            p[key] = float(np.exp(np.log(v) * k))
        elif key in toward:
            p[key] = type(v)(toward[key] + (v - toward[key]) * k)
        elif key not in ("cx", "cy"):
            p[key] = float(v * k)
    return p


def place(rng: np.random.Generator, pkg_size: tuple[int, int], W: int, H: int,
          strength: float = 1.0) -> tuple[dict, np.ndarray]:
    """Where a photo puts the package face: the pose parameters and the face's 4 corners in the photo.

    The first draws of every photo (photograph() calls it first on its rng), so replaying them on a fresh
    rng with the same seed gives the exact geometry of a photo without rendering it. pkg_size is the flat
    face's (width, height) in pixels; only its aspect matters. Returns (params with scale, rotation,
    perspective, cx, cy; dst), dst a (4, 2) float array: the top-left, top-right, bottom-right and
    bottom-left corners of the face, in continuous photo coordinates (PIL's convention: (0, 0) is the
    top-left edge of the top-left pixel, pixel (i, j) covers [i, i+1) x [j, j+1), its centre is at
    (i + 0.5, j + 0.5); for OpenCV's convention, centres at integers, subtract 0.5)."""
    soften = (lambda q: q) if strength == 1.0 else (lambda q: _soften(q, strength))
    p = {}
    p["scale"] = float(rng.uniform(0.5, 0.9))            # distance: package width / photo width
    p["rotation"] = float(np.clip(rng.normal(0, 12), -30, 30))
    p["perspective"] = float(rng.uniform(0.0, 0.08))
    p = soften(p)
    pw = p["scale"] * W
    ph = pw * pkg_size[1] / pkg_size[0]
    a = np.deg2rad(p["rotation"])
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    corners = np.array([[-pw / 2, -ph / 2], [pw / 2, -ph / 2], [pw / 2, ph / 2], [-pw / 2, ph / 2]])
    corners = corners + rng.uniform(-1, 1, (4, 2)) * p["perspective"] * pw
    corners = corners @ rot.T
    half = np.abs(corners).max(axis=0)
    slack = np.maximum(0, np.array([W / 2, H / 2]) - half)
    centre = np.array([W / 2, H / 2]) + rng.uniform(-1, 1, 2) * slack
    p["cx"], p["cy"] = float(centre[0] / W), float(centre[1] / H)
    return p, corners + centre


def photo_size(size: int) -> tuple[int, int]:
    """(width, height) of a photo with long side `size` (4:3)."""
    return int(size), int(round(size * 3 / 4))


def _warp(face: np.ndarray, dst: np.ndarray, W: int, H: int) -> tuple[np.ndarray, int, int]:
    """The face (RGB uint8) warped so its outer edges land on dst: premultiplied RGBA (its colour already
    times its coverage, so its antialiased edges composite right), only over the box that holds it, and that
    box's top-left (x0, y0) in the photo."""
    x0, y0 = (max(0, int(np.floor(v)) - 2) for v in dst.min(axis=0))
    x1, y1 = (min(n, int(np.ceil(v)) + 2) for v, n in zip(dst.max(axis=0), (W, H)))
    h, w = face.shape[:2]
    src = np.array([(0, 0), (w, 0), (w, h), (0, h)], float)
    # dst and src are in PIL's convention (pixel centres at +0.5), OpenCV's centres are at integers.
    m = np.array(_perspective_coeffs((dst - 0.5 - (x0, y0)).tolist(), (src - 0.5).tolist()) + [1.0]).reshape(3, 3)
    rgba = cv2.cvtColor(face, cv2.COLOR_RGB2RGBA)
    out = cv2.warpPerspective(rgba, m, (x1 - x0, y1 - y0), flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return out, x0, y0


def _scene(pkg: Image.Image, rng, W: int, H: int, strength: float):
    """(parameters, (H, W, 3) uint8 photo): the package face placed in perspective on a background, with its
    contact shadow."""
    p, dst = place(rng, pkg.size, W, H, strength)
    pw = p["scale"] * W
    # Antialias first (the warp has no prefilter), then warp close to 1:1. PIL's Lanczos, not OpenCV's area
    # average: as sharp as the print allows without aliasing (an area average blurs the fine print).
    if pw < pkg.width * 0.9:
        k = 1.15 * pw / pkg.width  # a little above the final scale: the warp then only shrinks slightly
        pkg = pkg.resize((max(8, int(pkg.width * k)), max(8, int(pkg.height * k))), Image.LANCZOS)
    # The face's edges map onto dst whatever its pixel size (resizing keeps the edges where they are).
    warped, x0, y0 = _warp(np.asarray(pkg.convert("RGB")), dst, W, H)
    img = _background(rng, W, H, dst)
    h, w = warped.shape[:2]
    box = img[y0:y0 + h, x0:x0 + w]
    # Premultiplied "over": the face plus what its coverage leaves of the background.
    clear = cv2.cvtColor(cv2.bitwise_not(cv2.extractChannel(warped, 3)), cv2.COLOR_GRAY2RGB)
    cv2.add(cv2.cvtColor(warped, cv2.COLOR_RGBA2RGB), cv2.multiply(box, clear, scale=1 / 255), dst=box)
    return p, img


def _lighting(img: np.ndarray, p: dict, rng, W: int, H: int, strength: float, soften):
    """(parameters, photo): exposure, white balance, a light gradient, a cast shadow and glare. The parameters
    are a new dict when strength softens them (soften returns a copy)."""
    p["exposure"] = float(rng.uniform(0.75, 1.2))
    p["wb_r"], p["wb_b"] = float(np.exp(rng.normal(0, 0.06))), float(np.exp(rng.normal(0, 0.06)))
    p["gradient"] = float(rng.uniform(0, 0.35))
    p = soften(p)
    gain = _smooth_field(rng, "gradient", p["gradient"]) * p["exposure"]
    p["shadow"] = float(rng.uniform(0.15, 0.45)) if rng.random() < 0.3 else 0.0
    p["shadow"] *= min(1.0, strength)
    if p["shadow"]:
        gain = gain * _smooth_field(rng, "shadow", p["shadow"])
    # One enlargement of the per-channel gain (light times white balance); the product saturates at 255.
    gain = gain[..., None] * np.array([p["wb_r"], 1.0, p["wb_b"]], np.float32)
    img = cv2.multiply(img, _enlarge(gain, W, H), dtype=cv2.CV_8U)
    p["glare"] = float(rng.uniform(0.2, 0.7)) if rng.random() < 0.35 else 0.0
    p["glare"] *= min(1.0, strength)
    if p["glare"]:
        # x + (255 - x) g = 255 - (255 - x)(1 - g): glare takes away part of what is left below white.
        keep = _enlarge(np.dstack([1 - _smooth_field(rng, "glare", p["glare"])] * 3), W, H)
        img = cv2.bitwise_not(cv2.multiply(cv2.bitwise_not(img), keep, dtype=cv2.CV_8U))
    return p, img


def _motion_kernel(n: int, ang: float) -> np.ndarray:
    """The camera's shift during the exposure as one filter2D kernel: the mean of n copies of the image, each
    moved by (dx, dy) along a line of length n at angle ang (filter2D correlates, hence the tap at -(dx, dy))."""
    c = n // 2 + 1
    k = np.zeros((2 * c + 1, 2 * c + 1), np.float32)
    for t in np.linspace(-0.5, 0.5, n):
        k[c - int(round(t * n * np.sin(ang))), c - int(round(t * n * np.cos(ang)))] += 1.0 / n
    return k


def _optics_and_sensor(img: np.ndarray, p: dict, rng, W: int, strength: float) -> np.ndarray:
    """Defocus, motion blur and sensor noise (their parameters into p), and the JPEG quality to save at; W is
    the photo's long side."""
    p["defocus"] = float(rng.uniform(0, 1.3)) if rng.random() < 0.5 else 0.0
    p["defocus"] *= min(1.0, strength)
    if p["defocus"]:
        img = _blur(img, p["defocus"] * W / 384)
    p["motion"] = float(rng.uniform(2, 6)) if rng.random() < 0.3 else 0.0
    p["motion"] = p["motion"] if strength >= 1.0 or p["motion"] * strength >= 2 else 0.0
    if p["motion"]:
        n = max(2, int(round(p["motion"] * W / 384)))
        img = cv2.filter2D(img, -1, _motion_kernel(n, rng.uniform(0, np.pi)))
    phone = W >= PHONE_SIZE
    # A phone's grain is stronger than the stress case's noise: it stands in for the fine texture of real
    # scenes, which is what makes a phone's JPEG weigh 3-5 MB at 12 MP.
    p["noise"] = float(rng.uniform(*((4.0, 8.0) if phone else (1.0, 6.0)))) * min(1.0, max(strength, 0.2))
    img = _sensor_noise(img, p["noise"], rng, phone)
    p["jpeg_quality"] = _jpeg_quality(rng, W, strength)
    return img


def _sensor_noise(img: np.ndarray, sigma: float, rng, phone: bool) -> np.ndarray:
    """A read-noise floor plus shot noise that grows with brightness: sigma * (0.5 + level / 255), one draw.

    Per channel in the stress case; a phone's denoiser leaves luma grain only (one offset for R, G and B
    leaves chroma alone), one plane, a third of the draws."""
    level = (cv2.cvtColor(img, cv2.COLOR_RGB2GRAY) if phone else img).astype(np.float32)
    n = rng.standard_normal(level.shape, dtype=np.float32)
    level *= sigma / 255
    level += sigma / 2
    n *= level
    return cv2.add(img, cv2.merge([n] * 3) if phone else n, dtype=cv2.CV_8U)


def _jpeg_quality(rng, size: int, strength: float) -> int:
    """The quality the photo is saved at: any app's 60-95 below PHONE_SIZE (the stress case), a phone camera's
    88-95 from it up (what its files weigh and cost to decode). One draw either way."""
    q = int(rng.integers(88 if size >= PHONE_SIZE else 60, 96))
    return int(round(95 - (95 - q) * min(1.0, strength)))


def photograph(pkg: Image.Image, rng: np.random.Generator, size: int = 384, strength: float = 1.0) -> tuple[bytes, dict]:
    """One handheld photo (4:3, long side `size`) of a flat package face; returns JPEG bytes and parameters.

    strength scales every capture nuisance (1 = the benchmark; 0 = close, square-on, clean light).
    The face's corners land where place() says: pkg's (0, 0), (w, 0), (w, h), (0, h) edges -> dst[0..3]."""
    W, H = photo_size(size)
    soften = (lambda q: q) if strength == 1.0 else (lambda q: _soften(q, strength))
    p, img = _scene(pkg, rng, W, H, strength)
    p, img = _lighting(img, p, rng, W, H, strength, soften)
    img = _optics_and_sensor(img, p, rng, W, strength)
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, "JPEG", quality=p["jpeg_quality"])
    return buf.getvalue(), {k: (round(v, 4) if isinstance(v, float) else v) for k, v in p.items()}
