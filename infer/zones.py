"""Zone checks: what an officer would check against the artwork, read on the sharp face.

    zones = learn(template_rgb)                     # once per template: barcode, text lines, inks
    zones = refine(zones, genuine_sharp_faces)      # with genuine photos: the inks' tolerances
    findings = check(sharp_face, zones)             # [Finding] for barcode, text, colour
    features(findings)                              # {"barcode": s, "text": s, "colour": s} for the fusion

No training: each zone compares the face with what its template says (the number the bars encode, the words of
each line, the colour of each ink relative to the paper) and with how genuine units vary where that is known.
A zone that cannot be read (a 384 px photo, glare on the bars, no OCR installed) is "unread": no evidence.
"""
from __future__ import annotations

import time

import numpy as np

from genuine.infer import zone_barcode, zone_colour, zone_text
from genuine.infer.ocr import Ocr
from genuine.infer.zone_finding import Finding

ZONES_VERSION = "zones-1"
ZONES = ("barcode", "text", "colour")
SHARP_SIDE = 1600      # long side of the sharp face the zones read (templates are stored up to 2048)
MIN_TEXT_PX = 14       # text lines lower than this on the sharp face are not worth reading (OCR needs ~16+)


def learn(template: np.ndarray, ocr: Ocr | None = None) -> dict:
    """Everything the zone checks need from the artwork (JSON-able), at SHARP_SIDE."""
    ocr = ocr if ocr is not None else Ocr.installed()
    t0 = time.perf_counter()
    text = zone_text.learn(template, ocr) if ocr is not None else None
    return {"version": ZONES_VERSION, "size": [int(template.shape[1]), int(template.shape[0])],
            "barcode": zone_barcode.learn(template), "text": text, "colour": zone_colour.learn(template),
            "ocr": None if ocr is None else ocr.name, "seconds": round(time.perf_counter() - t0, 2)}


def refine(zones: dict, genuine_faces) -> dict:
    """Zones with what genuine photos of the product teach: the inks' tolerances (sharp faces)."""
    faces = [f for f in genuine_faces if f is not None]
    out = dict(zones)
    if zones.get("colour"):
        out["colour"] = zone_colour.refine(zones["colour"], faces)
    return out


def _readable(face: np.ndarray, zones: dict, box) -> bool:
    return (box[3] - box[1]) * face.shape[0] >= MIN_TEXT_PX


def check(face: np.ndarray | None, zones: dict | None, ocr: Ocr | None = None) -> list[Finding]:
    """Each zone's finding on a sharp face (None, or zones None: nothing to check)."""
    if face is None or not zones:
        return []
    out = []
    if zones.get("barcode"):
        out.append(zone_barcode.check(face, zones["barcode"]))
    ocr = ocr if ocr is not None else Ocr.installed()
    text = zones.get("text")
    if text and ocr is not None:
        lines = [ln for ln in text["lines"] if _readable(face, zones, ln["box"])]
        out.append(zone_text.check(face, {**text, "lines": lines}, ocr) if lines else
                   Finding("text", "unread", 0.0, "text too small on this photo to read: retake closer",
                           text["lines"][0]["box"], {}))
    if zones.get("colour"):
        out.append(zone_colour.check(face, zones["colour"]))
    return out


def features(findings: list[Finding]) -> dict[str, float]:
    """Each zone's evidence for the fusion: its score, 0 where it passed or was not read."""
    got = {f.zone: (f.score if f.state == "fail" else 0.0) for f in findings}
    return {z: float(got.get(z, 0.0)) for z in ZONES}
