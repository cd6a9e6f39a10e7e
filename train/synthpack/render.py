"""Print one physical unit: a Design's artwork with the unit's own tolerances.

Genuine units differ (print offset, ink density, wear) and so must the benchmark:
a model has to learn that this is not counterfeiting.

    img, boxes = render(design, item, width=384)   # flat package face, RGB
    boxes["wordmark"]                              # (x0, y0, x1, y1) in pixels
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from .barcode import ean13_modules
from .design import ASPECT, Design, font


@dataclass(frozen=True)
class Item:
    serial: str
    lot: str
    offset: tuple[float, float]   # print offset against the die cut, in units of 1/100 width
    ink: float                    # ink density (1 = nominal)
    wear: float                   # 0 = mint, 1 = worn
    wear_seed: int


def _blend(a, b, t: float) -> tuple:
    return tuple(int(round(x * (1 - t) + y * t)) for x, y in zip(a, b))


def _text_tracked(draw, xy, text, fnt, fill, tracking_px=0.0, stroke=0):
    x, y = xy
    for ch in text:
        draw.text((x, y), ch, font=fnt, fill=fill, stroke_width=stroke, stroke_fill=fill)
        x += fnt.getlength(ch) + tracking_px
    return x


def _logo(draw, cx, cy, r, d: Design):
    lg = d.logo
    draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=d.paper)
    ring = max(1, int(round(lg.ring * r)))
    draw.ellipse([cx - r, cy - r, cx + r, cy + r], outline=d.accent, width=ring)
    sx, sy = cx + lg.offset[0] * r, cy + lg.offset[1] * r
    ro = (r - ring) * 0.92
    pts = []
    for i in range(2 * lg.points):
        rad = ro if i % 2 == 0 else ro * lg.inner
        a = lg.rotation + np.pi * i / lg.points
        pts.append((sx + rad * np.cos(a), sy + rad * np.sin(a)))
    draw.polygon(pts, fill=d.secondary)
    c = lg.core * r
    draw.ellipse([sx - c, sy - c, sx + c, sy + c], fill=d.paper)


def _barcode(d: Design, w: int, h: int, digits_px: int, seed: int) -> Image.Image:
    """Bars drawn at 4x and downsampled, so sub-pixel modules are antialiased like real print."""
    s = 4
    modules = ean13_modules(d.ean)
    W, H = w * s, h * s
    img = Image.new("L", (W, H), 255)
    dr = ImageDraw.Draw(img)
    mw = W / 95.0
    rng = np.random.default_rng(seed)
    for m, bit in enumerate(modules):
        if bit == "1":
            x0, x1 = m * mw, (m + 1) * mw
            if d.bar_jitter and rng.random() < d.bar_jitter:
                x1 += rng.choice([-0.45, 0.45]) * mw
            dr.rectangle([int(x0), 0, int(np.ceil(x1)) - 1, H - 1], fill=0)
    bars = img.resize((w, h), Image.LANCZOS)
    out = Image.new("L", (w, h + digits_px + 2), 255)
    out.paste(bars, (0, 0))
    printed = d.ean_printed or d.ean
    fnt = font("mono", digits_px)
    text = f"{printed[0]} {printed[1:7]} {printed[7:]}"
    tw = fnt.getlength(text)
    ImageDraw.Draw(out).text(((w - tw) / 2, h + 1), text, font=fnt, fill=0)
    return out


def _security(d: Design, w: int, h: int, scale: float) -> Image.Image:
    tint = _blend(d.paper, d.secondary, 0.12)
    img = Image.new("RGB", (w, h), tint)
    if not d.security_visible:
        return img
    dr = ImageDraw.Draw(img)
    cx, cy = w / 2, h * 0.42
    th = np.linspace(0, 2 * np.pi, 240)
    lw = max(1, int(round(d.guilloche_width * scale)))
    n = d.guilloche_lines
    for i in range(n):
        # Nested, phase-shifted wavy rings: fine interlaced lines a cheap print cannot hold.
        ph = np.pi * i / n
        size = 0.45 + 0.55 * i / max(1, n - 1)
        rr = size * (1 + d.guilloche_amp * np.sin(d.guilloche_k * th + ph)) / (1 + d.guilloche_amp)
        xs, ys = cx + 0.47 * w * rr * np.cos(th), cy + 0.38 * h * rr * np.sin(th)
        dr.line(list(zip(xs.tolist(), ys.tolist())) + [(float(xs[0]), float(ys[0]))], fill=d.secondary, width=lw)
    mpx = max(5, int(round(h * 0.11)))
    y = h - mpx - 2
    if d.microtext_mode == "dashes":
        for x in range(2, w - 2, max(3, mpx // 2)):
            dr.line([(x, y + mpx // 2), (x + max(1, mpx // 3), y + mpx // 2)], fill=d.ink, width=1)
    elif d.microtext_mode in ("sharp", "blurred"):
        layer = Image.new("RGB", (w, mpx + 2), tint)
        ImageDraw.Draw(layer).text((2, 0), d.microtext, font=font("sans", mpx), fill=d.ink)
        if d.microtext_mode == "blurred":
            layer = layer.filter(ImageFilter.GaussianBlur(mpx * 0.18))
        img.paste(layer, (0, y))
    return img


def render(d: Design, item: Item, width: int, print_fx: Callable[[Image.Image], Image.Image] | None = None):
    """Render the package face at `width` px. print_fx models a defective printing process."""
    W, H = int(width), int(round(width * ASPECT))
    u = W / 100.0
    ox, oy = item.offset[0] * u, item.offset[1] * u
    img = Image.new("RGB", (W, H), d.paper)
    dr = ImageDraw.Draw(img)
    boxes = {}
    band = d.band_h * u
    dr.rectangle([0, 0, W, band + oy], fill=d.primary)
    dr.rectangle([0, band + oy, W, band + oy + 1.2 * u], fill=d.accent)
    boxes["band"] = (0, 0, W, int(band + oy + 1.2 * u))

    r = min(d.band_h * 0.42, 10.0) * u
    logo_cx = (5 * u + r if d.mirrored else W - 5 * u - r) + ox
    word_x = (5 * u + 2 * r + 4 * u if d.mirrored else 5 * u) + ox
    _logo(dr, logo_cx, band / 2 + oy, r, d)
    boxes["logo"] = tuple(int(v) for v in (logo_cx - r, band / 2 + oy - r, logo_cx + r, band / 2 + oy + r))

    wpx = int(round(d.word_size * band))
    wf = font(d.word_font, wpx)
    top = band / 2 + oy - (wf.getbbox("Hg")[1] + wf.getbbox("Hg")[3]) / 2
    x_end = _text_tracked(dr, (word_x, top), d.name, wf, d.paper, d.word_tracking * wpx,
                          int(round(d.word_weight * wpx)))
    boxes["wordmark"] = (int(word_x), int(top), int(x_end), int(top + wpx * 1.2))

    col_l = (50 if d.mirrored else 5) * u + ox
    col_r = (5 if d.mirrored else 55) * u + ox
    tf = font("sans", int(round(4.4 * u)))
    ty = band + 2.6 * u + oy
    dr.text((col_l, ty), d.tagline, font=tf, fill=d.primary)
    boxes["tagline"] = (int(col_l), int(ty), int(col_l + tf.getlength(d.tagline)), int(ty + 5.5 * u))

    ff = font("sans", int(round(2.3 * u)))
    fy0 = y = band + 9.5 * u + oy
    for line in d.fine_print:
        dr.text((col_l, y), line, font=ff, fill=d.ink)
        y += 3.0 * u
    boxes["fine_print"] = (int(col_l), int(fy0), int(col_l + 44 * u), int(y))
    lf = font("mono", int(round(2.6 * u)))
    ly = H - 5.5 * u + oy
    lot = f"LOT {item.lot}  SN {item.serial}"
    dr.text((col_l, ly), lot, font=lf, fill=d.ink)
    boxes["lot"] = (int(col_l), int(ly), int(col_l + lf.getlength(lot)), int(ly + 3 * u))

    sw, sh = int(40 * u), int(15 * u)
    sy = int(band + 3 * u + oy)
    img.paste(_security(d, sw, sh, W / 400.0), (int(col_r), sy))
    boxes["security"] = (int(col_r), sy, int(col_r) + sw, sy + sh)

    bw, bh = int(30 * u), int(9 * u)
    bx, by = int(col_r + 5 * u), int(band + 20.5 * u + oy)
    bc = _barcode(d, bw, bh, int(round(2.4 * u)), item.wear_seed)
    img.paste(Image.merge("RGB", [bc] * 3), (bx, by))
    boxes["barcode"] = (bx, by, bx + bc.width, by + bc.height)

    if print_fx is not None:
        img = print_fx(img)
    return _wear(_ink(img, d.paper, item.ink), item), boxes


def _ink(img: Image.Image, paper, density: float) -> Image.Image:
    """Ink density: each channel scaled about the paper's colour. A pixel's new value depends on its old one
    alone, so one lookup table per channel does it (the same values as the float arithmetic on every pixel)."""
    p = np.asarray(paper, dtype=np.float32)[None, :]
    levels = np.arange(256, dtype=np.float32)[:, None]
    lut = np.clip(p - (p - levels) * density + 0.5, 0, 255).astype(np.uint8)
    return Image.fromarray(cv2.LUT(np.asarray(img), lut[:, None, :]))


def _wear(img: Image.Image, item: Item) -> Image.Image:
    """Scuffs and rubbed edges: lighter strokes where ink was abraded."""
    if item.wear <= 0:
        return img
    rng = np.random.default_rng(item.wear_seed)
    W, H = img.size
    mask = Image.new("L", (W, H), 0)
    dr = ImageDraw.Draw(mask)
    for _ in range(int(rng.poisson(1 + 8 * item.wear))):
        x, y = rng.uniform(0, W), rng.uniform(0, H)
        ln, ang = rng.uniform(0.02, 0.15) * W, rng.uniform(0, np.pi)
        dr.line([(x, y), (x + ln * np.cos(ang), y + ln * np.sin(ang))],
                fill=int(rng.uniform(60, 200) * item.wear), width=int(rng.integers(1, 3)))
    edge = max(1, int(W * 0.01 * item.wear))
    dr.rectangle([0, 0, W - 1, H - 1], outline=int(140 * item.wear), width=edge)
    m = cv2.GaussianBlur(np.asarray(mask), (0, 0), 0.6)
    # a + (255 - a) m 0.6 / 255 = 255 - (255 - a)(255 - 0.6 m) / 255: integer image arithmetic, no float copy.
    keep = cv2.cvtColor(cv2.addWeighted(m, -0.6, m, 0, 255), cv2.COLOR_GRAY2RGB)
    return Image.fromarray(cv2.bitwise_not(cv2.multiply(cv2.bitwise_not(np.asarray(img)), keep, scale=1 / 255)))
