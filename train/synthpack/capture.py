"""Photograph a package as an officer's handheld would.

Every capture parameter is drawn from one distribution whatever the label, so
no capture condition can tell genuine from counterfeit (the shortcut that made a
published handbag model learn backgrounds).

    jpeg_bytes, params = photograph(package_img, rng, size=384)
"""
from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageDraw, ImageFilter


def _perspective_coeffs(dst, src) -> list[float]:
    """Coefficients PIL needs to map output pixel (x, y) back to input (u, v)."""
    rows, rhs = [], []
    for (x, y), (u, v) in zip(dst, src):
        rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        rows.append([0, 0, 0, x, y, 1, -v * x, -v * y])
        rhs += [u, v]
    return np.linalg.solve(np.array(rows, float), np.array(rhs, float)).tolist()


def _background(rng, W: int, H: int) -> Image.Image:
    """A cluttered shelf or desk, out of focus: boxes, labels, stripes in random colours."""
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
    return bg.resize((W, H), Image.BILINEAR).filter(ImageFilter.GaussianBlur(rng.uniform(0.5, 2.5) * W / 384))


def _smooth_field(rng, W, H, kind: str, strength: float) -> np.ndarray:
    """Low-frequency light fields, computed small and upsampled (they have no detail anyway)."""
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
    return np.asarray(Image.fromarray(f.astype(np.float32), "F").resize((W, H), Image.BILINEAR))


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


def _scene(pkg: Image.Image, rng, W: int, H: int, strength: float):
    """(parameters, RGB photo): the package face placed in perspective on a background, with its contact shadow."""
    p, dst = place(rng, pkg.size, W, H, strength)
    pw = p["scale"] * W
    # Antialias first (PIL's warp has no prefilter), then warp close to 1:1.
    if pw < pkg.width * 0.9:
        k = 1.15 * pw / pkg.width  # a little above the final scale: the warp then only shrinks slightly
        pkg = pkg.resize((max(8, int(pkg.width * k)), max(8, int(pkg.height * k))), Image.LANCZOS)
    # The face's edges map onto dst whatever its pixel size (resizing keeps the edges where they are).
    src = [(0, 0), (pkg.width, 0), (pkg.width, pkg.height), (0, pkg.height)]
    coeffs = _perspective_coeffs(dst.tolist(), src)
    rgba = pkg.convert("RGBA")
    warped = rgba.transform((W, H), Image.PERSPECTIVE, coeffs, Image.BICUBIC)
    img = _background(rng, W, H)
    # The package casts a soft contact shadow on what it lies on or stands in front of.
    alpha = warped.getchannel("A")
    shade = alpha.filter(ImageFilter.GaussianBlur(0.02 * W)).point(lambda v: int(v * 0.45))
    img.paste((0, 0, 0), (int(0.01 * W), int(0.015 * W)), shade)
    img.paste(warped, (0, 0), alpha)
    return p, img


def _lighting(img: Image.Image, p: dict, rng, W: int, H: int, strength: float, soften):
    """(parameters, photo): exposure, white balance, a light gradient, a cast shadow and glare. The parameters are
    a new dict when strength softens them (soften returns a copy)."""
    x = np.asarray(img, dtype=np.float32)
    p["exposure"] = float(rng.uniform(0.75, 1.2))
    p["wb_r"], p["wb_b"] = float(np.exp(rng.normal(0, 0.06))), float(np.exp(rng.normal(0, 0.06)))
    p["gradient"] = float(rng.uniform(0, 0.35))
    p = soften(p)
    gain = _smooth_field(rng, W, H, "gradient", p["gradient"]) * p["exposure"]
    p["shadow"] = float(rng.uniform(0.15, 0.45)) if rng.random() < 0.3 else 0.0
    p["shadow"] *= min(1.0, strength)
    if p["shadow"]:
        gain = gain * _smooth_field(rng, W, H, "shadow", p["shadow"])
    x = x * gain[..., None] * np.array([p["wb_r"], 1.0, p["wb_b"]], dtype=np.float32)
    p["glare"] = float(rng.uniform(0.2, 0.7)) if rng.random() < 0.35 else 0.0
    p["glare"] *= min(1.0, strength)
    if p["glare"]:
        g = _smooth_field(rng, W, H, "glare", p["glare"])[..., None]
        x = x + (255.0 - x).clip(0) * g
    return p, Image.fromarray(np.clip(x, 0, 255).astype(np.uint8))


def _optics_and_sensor(img: Image.Image, p: dict, rng, W: int, strength: float) -> Image.Image:
    """Defocus, motion blur and sensor noise (their parameters into p), and the JPEG quality to save at."""
    p["defocus"] = float(rng.uniform(0, 1.3)) if rng.random() < 0.5 else 0.0
    p["defocus"] *= min(1.0, strength)
    if p["defocus"]:
        img = img.filter(ImageFilter.GaussianBlur(p["defocus"] * W / 384))
    x = np.asarray(img, dtype=np.float32)
    p["motion"] = float(rng.uniform(2, 6)) if rng.random() < 0.3 else 0.0
    p["motion"] = p["motion"] if strength >= 1.0 or p["motion"] * strength >= 2 else 0.0
    if p["motion"]:
        n = max(2, int(round(p["motion"] * W / 384)))
        ang = rng.uniform(0, np.pi)
        acc = np.zeros_like(x)
        for t in np.linspace(-0.5, 0.5, n):
            acc += np.roll(x, (int(round(t * n * np.sin(ang))), int(round(t * n * np.cos(ang)))), axis=(0, 1))
        x = acc / n
    p["noise"] = float(rng.uniform(1.0, 6.0)) * min(1.0, max(strength, 0.2))
    # Sensor noise: a read-noise floor plus shot noise that grows with brightness.
    sigma = p["noise"] * (0.5 + x / 255.0)
    x = x + rng.standard_normal(x.shape, dtype=np.float32) * sigma
    img = Image.fromarray(np.clip(x + 0.5, 0, 255).astype(np.uint8))
    p["jpeg_quality"] = int(rng.integers(60, 96))
    p["jpeg_quality"] = int(round(95 - (95 - p["jpeg_quality"]) * min(1.0, strength)))
    return img


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
    img.save(buf, "JPEG", quality=p["jpeg_quality"])
    return buf.getvalue(), {k: (round(v, 4) if isinstance(v, float) else v) for k, v in p.items()}
