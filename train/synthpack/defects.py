"""Counterfeit defect families, each with a severity in [0, 1] that difficulty scales.

A counterfeit is a genuine Design with fields changed (what the counterfeiter got
wrong in the artwork) and/or a print_fx (what their printing process does).

    fake, print_fx, detail = counterfeit(design, "logo", severity=0.5, rng=rng)
"""
from __future__ import annotations

import colorsys
from dataclasses import replace

import numpy as np
from PIL import Image, ImageFilter

from .barcode import check_digit
from .design import LOOKALIKE, Design

FAMILIES = ("colour", "wordmark", "logo", "print", "security", "text", "misregistration", "barcode")
# Severity ranges: at hard a person needs a close look; at easy it is visible at arm's length.
SEVERITY = {"easy": (0.6, 1.0), "medium": (0.35, 0.75), "hard": (0.12, 0.4)}
# Where each family shows, for contact sheets and error analysis.
REGION = {"colour": "band", "wordmark": "wordmark", "logo": "logo", "print": "wordmark", "security": "security",
          "text": "fine_print", "misregistration": "logo", "barcode": "barcode"}


def _sign(rng) -> float:
    return 1.0 if rng.random() < 0.5 else -1.0


def _shift_colour(rgb, rng, sev):
    h, s, v = colorsys.rgb_to_hsv(*(c / 255 for c in rgb))
    h += _sign(rng) * (0.012 + 0.05 * sev)
    s = min(1.0, max(0.0, s * (1 + _sign(rng) * 0.3 * sev)))
    v = min(1.0, max(0.0, v * (1 + _sign(rng) * 0.2 * sev)))
    return tuple(int(round(c * 255)) for c in colorsys.hsv_to_rgb(h % 1.0, s, v))


def _misspell(word: str, rng) -> str:
    if len(word) < 4:
        return word + word[-1]
    i = int(rng.integers(1, len(word) - 2))
    kind = rng.integers(0, 3)
    if kind == 0:   # transposed letters
        return word[:i] + word[i + 1] + word[i] + word[i + 2:]
    if kind == 1:   # dropped letter
        return word[:i] + word[i + 1:]
    similar = {"a": "o", "o": "a", "e": "c", "c": "e", "i": "l", "l": "i", "n": "m", "m": "n", "u": "v", "r": "n"}
    return word[:i] + similar.get(word[i], "x") + word[i + 1:]


def _misspell_line(line: str, rng) -> str:
    words = line.split(" ")
    idx = [i for i, w in enumerate(words) if len(w.strip(".")) >= 4] or [0]
    i = int(rng.choice(idx))
    for _ in range(8):  # transposing "ee" changes nothing: draw again
        wrong = _misspell(words[i], rng)
        if wrong != words[i]:
            break
    words[i] = wrong
    return " ".join(words)


def _resolution_fx(factor: float):
    def fx(img: Image.Image) -> Image.Image:
        small = img.resize((max(8, int(img.width / factor)), max(8, int(img.height / factor))), Image.BILINEAR)
        return small.resize(img.size, Image.BILINEAR)
    return fx


def _bleed_fx(radius: float, amount: float):
    def fx(img: Image.Image) -> Image.Image:
        spread = img.filter(ImageFilter.MinFilter(3)).filter(ImageFilter.GaussianBlur(radius))
        return Image.blend(img, spread, amount)
    return fx


def _halftone_fx(period: float, depth: float, angle: float):
    def fx(img: Image.Image) -> Image.Image:
        a = np.asarray(img, dtype=np.float32)
        yy, xx = np.mgrid[0:img.height, 0:img.width].astype(np.float32)
        u = xx * np.cos(angle) + yy * np.sin(angle)
        v = -xx * np.sin(angle) + yy * np.cos(angle)
        screen = 0.25 * (2 + np.cos(2 * np.pi * u / period) + np.cos(2 * np.pi * v / period))  # 0..1 dots
        ink = 255.0 - a
        out = 255.0 - ink * (1 - depth + depth * 2 * screen[..., None]).clip(0, 1.6)
        return Image.fromarray(np.clip(out + 0.5, 0, 255).astype(np.uint8))
    return fx


def _misregister_fx(channel: int, dx: int, dy: int):
    def fx(img: Image.Image) -> Image.Image:
        a = np.asarray(img).copy()
        a[..., channel] = np.roll(a[..., channel], (dy, dx), axis=(0, 1))
        return Image.fromarray(a)
    return fx


def counterfeit(d: Design, family: str, severity: float, rng: np.random.Generator, width: int = 400):
    """Return (design, print_fx, detail) for a counterfeit unit of `family` at `severity`."""
    make = _MAKERS.get(family)
    if make is None:
        raise ValueError(f"unknown defect family {family!r}; choose from {', '.join(FAMILIES)}")
    return make(d, float(severity), rng, width / 400.0)


def _colour(d: Design, sev: float, rng: np.random.Generator, px: float):
    which = str(rng.choice(["primary", "secondary", "accent"], p=[0.6, 0.2, 0.2]))
    return replace(d, **{which: _shift_colour(getattr(d, which), rng, sev)}), None, f"{which} colour shifted"


def _wordmark(d: Design, sev: float, rng: np.random.Generator, px: float):
    mode = str(rng.choice(["font", "weight", "tracking"]))
    if mode == "font":
        return replace(d, word_font=LOOKALIKE[d.word_font]), None, f"font {LOOKALIKE[d.word_font]} for {d.word_font}"
    if mode == "weight":
        return replace(d, word_weight=0.015 + 0.045 * sev), None, "heavier wordmark"
    return replace(d, word_tracking=max(-0.05, d.word_tracking + _sign(rng) * (0.03 + 0.1 * sev))), None, "kerning"


def _logo(d: Design, sev: float, rng: np.random.Generator, px: float):
    lg, changes = d.logo, []
    for change in rng.permutation(["inner", "rotation", "ring", "offset"])[: int(rng.integers(1, 3))]:
        changes.append(str(change))
        if change == "inner":
            lg = replace(lg, inner=float(np.clip(lg.inner + _sign(rng) * (0.06 + 0.2 * sev), 0.25, 0.8)))
        elif change == "rotation":
            lg = replace(lg, rotation=lg.rotation + (0.2 + 0.6 * sev) * np.pi / lg.points)
        elif change == "ring":
            lg = replace(lg, ring=lg.ring * (1 + _sign(rng) * (0.3 + 0.6 * sev)))
        else:
            a = rng.uniform(0, 2 * np.pi)
            lg = replace(lg, offset=(0.05 + 0.12 * sev) * np.array([np.cos(a), np.sin(a)]))
    if sev > 0.7:
        lg, changes = replace(lg, points=lg.points + int(_sign(rng))), changes + ["points"]
    return replace(d, logo=lg), None, "logo " + "+".join(changes)


def _print(d: Design, sev: float, rng: np.random.Generator, px: float):
    mode = str(rng.choice(["resolution", "bleed", "halftone"]))
    if mode == "resolution":
        return d, _resolution_fx(1.3 + 2.2 * sev), "low effective resolution"
    if mode == "bleed":
        return d, _bleed_fx((0.3 + 0.9 * sev) * px, 0.35 + 0.5 * sev), "ink bleed"
    return d, _halftone_fx(max(2.5, 3.5 * px), 0.2 + 0.5 * sev, rng.uniform(0, np.pi / 2)), "halftone"


def _security(d: Design, sev: float, rng: np.random.Generator, px: float):
    lines = max(3, int(round(d.guilloche_lines * (1 - 0.6 * sev))))
    micro = "sharp" if sev < 0.25 else ("blurred" if sev < 0.6 else "dashes")
    fake = replace(d, guilloche_lines=lines, guilloche_width=d.guilloche_width * (1 + 1.5 * sev),
                   microtext_mode=micro, security_visible=sev < 0.9)
    return fake, None, "security missing" if sev >= 0.9 else f"{lines} guilloche lines, microtext {micro}"


def _text(d: Design, sev: float, rng: np.random.Generator, px: float):
    lines = list(d.fine_print)
    for _ in range(1 + int(sev * 3.99)):
        i = int(rng.integers(0, len(lines)))
        lines[i] = _misspell_line(lines[i], rng)
    fake = replace(d, fine_print=tuple(lines))
    if sev > 0.55:
        fake = replace(fake, tagline=_misspell_line(d.tagline, rng))
    return fake, None, "misspelt text"


def _misregistration(d: Design, sev: float, rng: np.random.Generator, px: float):
    shift = max(1, int(round((1.0 + 4.0 * sev) * px)))
    a = rng.uniform(0, 2 * np.pi)
    dx, dy = int(round(shift * np.cos(a))), int(round(shift * np.sin(a)))
    return d, _misregister_fx(int(rng.integers(0, 3)), dx or 1, dy), f"plate offset {shift}px"


def _barcode(d: Design, sev: float, rng: np.random.Generator, px: float):
    wrong = (check_digit(d.ean[:12]) + int(rng.integers(1, 10))) % 10
    ean = d.ean[:12] + str(wrong)
    printed = list(ean)
    j = int(rng.integers(1, 12))
    printed[j] = str((int(printed[j]) + int(rng.integers(1, 10))) % 10)
    return replace(d, ean=ean, ean_printed="".join(printed), bar_jitter=0.05 + 0.4 * sev), None, "barcode"


_MAKERS = {"colour": _colour, "wordmark": _wordmark, "logo": _logo, "print": _print, "security": _security,
           "text": _text, "misregistration": _misregistration, "barcode": _barcode}   # one per family (FAMILIES)
