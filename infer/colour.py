"""Colour arithmetic for the colour zone: sRGB <-> CIELAB (D65) and the CIEDE2000 difference, vectorised numpy.

    lab = srgb_to_lab(rgb_uint8)            # (..., 3) float
    de = ciede2000(lab1, lab2)              # (...,) the perceptual difference; ~1 is just noticeable

Written out here rather than pulled from colour-science or scikit-image: twenty lines of numpy against a large
dependency for the handheld; checked against Sharma, Wu and Dalal's published test pairs (tests/test_zones.py).
"""
from __future__ import annotations

import numpy as np

_M = np.array([[0.4124564, 0.3575761, 0.1804375], [0.2126729, 0.7151522, 0.0721750],
               [0.0193339, 0.1191920, 0.9503041]])
_WHITE = np.array([0.95047, 1.0, 1.08883])


def _decode(c):
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


_LUT = _decode(np.arange(256) / 255.0)   # uint8 faces are looked up: the power function per pixel costs ms


def srgb_to_linear(rgb) -> np.ndarray:
    a = np.asarray(rgb)
    return _LUT[a] if a.dtype == np.uint8 else _decode(a.astype(np.float64) / 255.0)


def linear_to_lab(lin) -> np.ndarray:
    xyz = np.asarray(lin, np.float64) @ _M.T / _WHITE
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], -1)


def srgb_to_lab(rgb) -> np.ndarray:
    return linear_to_lab(srgb_to_linear(rgb))


def ciede2000(lab1, lab2, kl: float = 1.0) -> np.ndarray:
    """CIEDE2000 colour difference between CIELAB colours, broadcasting (kC = kH = 1; kl weights lightness down)."""
    L1, a1, b1 = np.moveaxis(np.asarray(lab1, np.float64), -1, 0)
    L2, a2, b2 = np.moveaxis(np.asarray(lab2, np.float64), -1, 0)
    cbar = (np.hypot(a1, b1) + np.hypot(a2, b2)) / 2
    g = 0.5 * (1 - np.sqrt(cbar ** 7 / (cbar ** 7 + 25.0 ** 7)))
    a1p, a2p = a1 * (1 + g), a2 * (1 + g)
    c1p, c2p = np.hypot(a1p, b1), np.hypot(a2p, b2)
    h1p, h2p = np.degrees(np.arctan2(b1, a1p)) % 360, np.degrees(np.arctan2(b2, a2p)) % 360
    dh = h2p - h1p
    dh = np.where(c1p * c2p == 0, 0, np.where(dh > 180, dh - 360, np.where(dh < -180, dh + 360, dh)))
    dL, dC, dH = L2 - L1, c2p - c1p, 2 * np.sqrt(c1p * c2p) * np.sin(np.radians(dh / 2))
    lbar, cbarp = (L1 + L2) / 2, (c1p + c2p) / 2
    hsum = h1p + h2p
    hbar = np.where(c1p * c2p == 0, hsum,
                    np.where(np.abs(h1p - h2p) <= 180, hsum / 2, np.where(hsum < 360, (hsum + 360) / 2, (hsum - 360) / 2)))
    t = (1 - 0.17 * np.cos(np.radians(hbar - 30)) + 0.24 * np.cos(np.radians(2 * hbar))
         + 0.32 * np.cos(np.radians(3 * hbar + 6)) - 0.20 * np.cos(np.radians(4 * hbar - 63)))
    sl = 1 + 0.015 * (lbar - 50) ** 2 / np.sqrt(20 + (lbar - 50) ** 2)
    sc, sh = 1 + 0.045 * cbarp, 1 + 0.015 * cbarp * t
    rt = (-2 * np.sqrt(cbarp ** 7 / (cbarp ** 7 + 25.0 ** 7))
          * np.sin(np.radians(60 * np.exp(-(((hbar - 275) / 25) ** 2)))))
    return np.sqrt((dL / (kl * sl)) ** 2 + (dC / sc) ** 2 + (dH / sh) ** 2 + rt * (dC / sc) * (dH / sh))
