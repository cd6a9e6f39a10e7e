"""The barcode zone: the number the bars encode on the face, against the template's.

    zone = learn(template_rgb)                # {"box", "format", "number"} or None (no barcode on the artwork)
    finding = check(face_rgb, zone)           # a Finding: fail names both numbers; unreadable is no evidence

The bars are decoded by zxing-cpp (the same C++ library as zxing-wasm for the phone page later). A retail
barcode carries a check digit, so a misprinted or made-up number rarely decodes at all: zxing is asked to return
symbols that fail their checksum too, and a wrong check digit is itself evidence (genuine printers compute it).
"""
from __future__ import annotations

import numpy as np

from genuine.infer.zone_finding import Finding, crop, norm_box

MARGIN = 0.15      # a zone's box grows by this share of its size on the face: the warp is not pixel-exact


def _reads(rgb: np.ndarray) -> list:
    import zxingcpp   # imported here: a product without a barcode zone never needs it

    return [b for b in zxingcpp.read_barcodes(np.ascontiguousarray(rgb), return_errors=True)
            if b.format and b.text]


def learn(template: np.ndarray) -> dict | None:
    """The template's barcode (the largest valid symbol): its box (0..1 of the face), format and number."""
    h, w = template.shape[:2]
    best = None
    for b in _reads(template):
        if not b.valid:
            continue
        p = b.position
        xs, ys = [p.top_left.x, p.top_right.x, p.bottom_left.x, p.bottom_right.x], \
                 [p.top_left.y, p.top_right.y, p.bottom_left.y, p.bottom_right.y]
        box = norm_box((min(xs), min(ys), max(xs) + 1, max(ys) + 1), w, h)
        size = (box[2] - box[0]) * (box[3] - box[1])
        if best is None or size > best[0]:
            best = (size, {"box": box, "format": str(b.format.name), "number": b.text})
    if best is None:
        return None
    zone = best[1]
    # zxing's box of a 1D symbol spans the scan line it read: grow it to a retail barcode's height (EAN-13's
    # bars and digits are about 0.7 of its width), centred on that line.
    x0, y0, x1, y1 = zone["box"]
    half, cy = 0.35 * (x1 - x0) * w / h, (y0 + y1) / 2
    zone["box"] = [x0, max(0.0, cy - half), x1, min(1.0, cy + half)]
    return zone


def check(face: np.ndarray, zone: dict) -> Finding:
    """Decode the bars on the face where the template has them and compare the number."""
    want, fmt = zone["number"], zone["format"]
    reads = _reads(crop(face, zone["box"], MARGIN))
    valid = [b for b in reads if b.valid]
    box = zone["box"]
    if any(b.text == want for b in valid):
        return Finding("barcode", "pass", 0.0, f"barcode reads {want}, as the artwork", box, {"read": want})
    if valid:
        got = valid[0].text
        kind = "" if valid[0].format.name == fmt else f" ({valid[0].format.name}, the artwork's is {fmt})"
        return Finding("barcode", "fail", 1.0, f"barcode reads {got}{kind}, this product's is {want}", box,
                       {"read": got, "expected": want})
    bad = [b for b in reads if b.text and "checksum" in str(b.error).lower()]
    if bad:
        return Finding("barcode", "fail", 1.0, f"barcode reads {bad[0].text} with a wrong check digit (a genuine "
                       f"printer computes it); this product's is {want}", box, {"read": bad[0].text, "expected": want})
    return Finding("barcode", "unread", 0.0, "barcode not readable on this photo (no evidence either way)", box, {})
