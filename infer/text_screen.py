"""Which text lines to read: those whose pixels differ most from the artwork's, found without OCR.

    ln["strip"] = strip(template_rgb, ln["box"])      # once per template: the line as the artwork prints it
    s = differ(face_rgb, ln["box"], ln["strip"])      # 1 - the worst window's correlation with the artwork

Recognition costs 40-75 ms a line on one CPU core and a package has 8-11 lines (more on real ones), so reading
them all does not fit a handheld's budget. A misspelt word moves every letter after it: the window of the line
where it sits no longer correlates with the artwork's, while blur, exposure and a pixel of warp error lower every
window alike. The screen costs a few milliseconds for all lines; OCR then reads the most different few and
names the word.
"""
from __future__ import annotations

import base64
import io

import cv2
import numpy as np
from PIL import Image

HEIGHT = 24        # lines compared at this height (px): letters stay apart, the compare stays cheap
SLACK = 3          # px (at HEIGHT) each window may shift to meet the artwork: the warp's error along a line
WINDOW = 2.0       # window width in line heights: a word or two
MIN_STD = 12.0     # an artwork window flatter than this (grey levels) is a gap between words: not compared


def _grey_strip(rgb: np.ndarray, box, pad: int) -> np.ndarray:
    """The box of an RGB image scaled to HEIGHT px high (plus `pad` px on every side), grey, float32."""
    h, w = rgb.shape[:2]
    x0, y0, x1, y1 = box[0] * w, box[1] * h, box[2] * w, box[3] * h
    k = HEIGHT / max(y1 - y0, 1.0)
    out_w = max(int(round((x1 - x0) * k)), 1)
    # Only the line's neighbourhood is converted and softened (a whole 1600 px face per line would cost more
    # than the compare).
    m_px = int(np.ceil(pad / k + 2 / k)) + 2
    cx0, cy0 = max(int(x0) - m_px, 0), max(int(y0) - m_px, 0)
    part = rgb[cy0:min(int(np.ceil(y1)) + m_px, h), cx0:min(int(np.ceil(x1)) + m_px, w)]
    grey = cv2.cvtColor(part, cv2.COLOR_RGB2GRAY) if part.ndim == 3 else part
    if k < 0.7:   # shrinking: soften first so that the fine print does not alias differently on each photo
        grey = cv2.GaussianBlur(grey, (0, 0), 0.5 / k)
    x0, y0 = x0 - cx0, y0 - cy0
    m = np.float32([[k, 0, pad - x0 * k], [0, k, pad - y0 * k]])
    return cv2.warpAffine(grey, m, (out_w + 2 * pad, HEIGHT + 2 * pad), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE).astype(np.float32)


def strip(template: np.ndarray, box) -> str:
    """The artwork's line (0..1 box) as a small grey PNG, base64: what `differ` compares a face's line with."""
    buf = io.BytesIO()
    Image.fromarray(np.clip(_grey_strip(template, box, 0), 0, 255).astype(np.uint8)).save(buf, "PNG")
    return base64.b64encode(buf.getvalue()).decode()


def differ(face: np.ndarray, box, art: str) -> tuple[float, float]:
    """How unlike the artwork a face's line is, and where: (1 - the lowest correlation of any window of the
    artwork's line with the face around it (0: the same print; towards 1: other letters), that window's centre
    along the line, 0..1). (0, 0.5) where the artwork has no letters."""
    t = np.asarray(Image.open(io.BytesIO(base64.b64decode(art))), np.float32)
    f = _grey_strip(face, box, SLACK)
    if f.shape[1] - 2 * SLACK != t.shape[1]:   # rounding: the face's strip follows the artwork's width
        f = cv2.resize(f, (t.shape[1] + 2 * SLACK, t.shape[0] + 2 * SLACK), interpolation=cv2.INTER_LINEAR)
    win = max(int(WINDOW * HEIGHT), 8)
    worst, where = 1.0, 0.5
    for x in range(0, max(t.shape[1] - win, 0) + 1, win // 2):
        tw = t[:, x:x + win]
        if tw.std() < MIN_STD:
            continue
        r = float(cv2.matchTemplate(f[:, x:x + tw.shape[1] + 2 * SLACK], tw, cv2.TM_CCOEFF_NORMED).max())
        if r < worst:
            worst, where = r, (x + tw.shape[1] / 2) / t.shape[1]
    return round(1.0 - worst, 4), round(where, 4)
