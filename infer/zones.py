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

import json
import time

import numpy as np

from genuine.infer import zone_barcode, zone_colour, zone_text
from genuine.infer.ocr import Ocr
from genuine.infer.zone_finding import Finding

ZONES_VERSION = "zones-7"   # bump when the same template or face would give other zones or findings
ZONES = ("barcode", "text", "colour")
SHARP_SIDE = 1600      # long side of the sharp face the zones read (templates are stored up to 2048)
MIN_TEXT_PX = 14       # text lines lower than this on the sharp face are not worth reading (OCR needs ~16+)
TEXT_MIN_SIDE = 600    # a template smaller than this has no print OCR can read (a 384 px SynthPack's is 365 px)


def learn(template: np.ndarray, ocr: Ocr | None = None) -> dict:
    """Everything the zone checks need from the artwork (JSON-able), at SHARP_SIDE."""
    ocr = ocr if ocr is not None else Ocr.installed()
    t0 = time.perf_counter()
    text = zone_text.learn(template, ocr) if ocr is not None and max(template.shape[:2]) >= TEXT_MIN_SIDE else None
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


def _readable(face: np.ndarray, box) -> bool:
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
        lines = [ln for ln in text["lines"] if _readable(face, ln["box"])]
        out.append(zone_text.check(face, {**text, "lines": lines}, ocr) if lines else
                   Finding("text", "unread", 0.0, "text too small on this photo to read: retake closer",
                           text["lines"][0]["box"], {}))
    if zones.get("colour"):
        out.append(zone_colour.check(face, zones["colour"]))
    return out


def retake_advice(findings: list[Finding]) -> list[str]:
    """Why zones could not be read, as what an officer can change: the photo, not the package, stopped them."""
    out = []
    for f in findings:
        if f.state != "unread":
            continue
        d = f.detail
        if f.zone == "barcode" and d.get("module_px"):
            if d["module_px"] < zone_barcode.MIN_MODULE_PX:
                out.append("the barcode is too small to scan: move closer")
            elif d["contrast"] < zone_barcode.MIN_CONTRAST:
                out.append("the barcode is washed out: avoid glare, more even light")
            elif d["sharpness"] < zone_barcode.SHARP_BARS:
                out.append(f"the barcode is blurred (sharpness {d['sharpness']:.1f}, bars scan from "
                           f"{zone_barcode.SHARP_BARS:.1f}): hold steady and focus on it")
        elif f.zone == "text":
            out.append("the fine print is too small: move closer" if "too small" in f.message
                       else "the fine print could not be read surely: hold steady, square-on")
    return out


def findings_of(text: str) -> list[Finding]:
    """Findings back from their JSON (a cached face's, train/faces.py)."""
    return [Finding.from_dict(d) for d in json.loads(text)] if text else []


def templates_zones(templates, book=None) -> dict:
    """{product: zones} of a TemplateSet's face templates (the first template of each product), learnt or read."""
    from genuine.infer.zone_book import ZoneBook

    book = book or ZoneBook()
    out: dict = {}
    for t in templates.templates:
        if not t.view and t.product not in out:
            out[t.product] = book.get(t)
    return out


def features(findings: list[Finding]) -> dict[str, float]:
    """Each zone's evidence for the fusion: its score, 0 where it passed or was not read."""
    got = {f.zone: (f.score if f.state == "fail" else 0.0) for f in findings}
    return {z: float(got.get(z, 0.0)) for z in ZONES}


def weighed(p: float, findings: list[Finding], fit: dict | None) -> tuple[float, dict]:
    """(p, evidence): p(counterfeit) with the zones' evidence added in logit space by the weights fitted on val
    (meta["zones"], train/zone_fusion.py), and what each zone found. Without fitted weights the findings are
    reported and p is left as it is: a zone's word is only as good as its measured false alarms."""
    ev: dict = {"findings": [f.to_dict() for f in findings], "weighed": False}
    if not findings:
        return p, {**ev, "why": "no zone checked (no sharp face)"}
    if not fit or not fit.get("used"):
        why = (fit or {}).get("why") or "this model carries no zone weights fitted on val"
        return p, {**ev, "why": why}
    feats = features(findings)
    added = sum(float(fit["weights"].get(z, 0.0)) * v for z, v in feats.items())
    pc = min(max(float(p), 1e-7), 1 - 1e-7)
    out = 1.0 / (1.0 + np.exp(-(np.log(pc / (1 - pc)) + added)))
    return float(out), {**ev, "weighed": True, "weights": fit["weights"], "logit_added": round(added, 4)}
