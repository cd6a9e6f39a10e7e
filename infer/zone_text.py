"""The text zone: each line of the artwork read on the face and compared with what the artwork says.

    zone = learn(template_rgb, ocr)          # {"lines": [{"box", "text", "variable"}], "ocr": model name}
    finding = check(face_rgb, zone, ocr)     # fail names the word: "'Ingredlents' where the artwork says ..."

Lines are found once per template (detection is seconds on a CPU); inspection only recognises those boxes.
Variable data (lot, serial, dates) differs on every genuine unit: such lines are checked for their format only
(digits stay digits, letters letters). They are recognised by their words on the artwork (LOT, SN, EXP, ...) and,
when genuine photos are added, by differing between genuine units (refine).
"""
from __future__ import annotations

import difflib
import re

import cv2
import numpy as np

from genuine.infer import text_screen
from genuine.infer.ocr import Ocr
from genuine.infer.zone_finding import Finding, crop, norm_box, pixel_box

MIN_CONF = 0.85        # a line of the artwork is kept only when read this surely (microtext and art are not)
READ_CONF = 0.6        # below this on the face the line is unread: no evidence
# A line that differs from the artwork is evidence only when read this surely: blurred genuine photos misread
# ('Oniginal', 'four' for 'flour') at 0.90-0.94; measured on SynthPack 1600 px (bench/zones.py, BENCHMARKS.md):
# genuine photos with a differing line 12/128 at 0.9, 2/128 at 0.95; misspelt-text counterfeits 11/16 and 7/16.
FAIL_CONF = 0.95
CHAR_CONF = 0.9        # ... and when every character where it differs (and its neighbours) is read this surely
END_SLACK = 2          # characters at a line's end that may differ: a crop cuts the last letter differently
MARGIN = 0.1
READ_LINES = 2         # lines recognised per photo: those the screen finds least like the artwork (text_screen.py)
SEGMENT = 12.0         # of a long line, only this many line heights around its least artwork-like window are read
# A keyword of variable data followed by a code with a digit in it ("LOT GA00", "EXP 12/27"; not "batch contains").
VARIABLE = re.compile(r"\b(LOT|L|SN|S/N|SERIAL|BATCH|EXP|BBE|BB|BEST BEFORE|USE BY|MFG|MFD|PROD)\b[\s:.#/]*\w*\d", re.I)


def _key(text: str) -> str:
    """What is compared: letters and digits. OCR's spacing and punctuation are not reliable (a crop that
    catches a descender of the line above reads as a quote), the characters are."""
    return re.sub(r"[\W_]+", "", text)


def shape(text: str) -> str:
    """A variable line's format: digits -> 9, letters -> A (LOT GA17 SN 0412 -> AAA AA99 AA 9999)."""
    return re.sub(r"[A-Za-z]", "A", re.sub(r"\d", "9", _key(text)))


def _photo_like(template: np.ndarray) -> list[np.ndarray]:
    """The artwork as photos see it: softened, shifted, scaled down and up. A line that reads differently on any
    of them is one OCR cannot be trusted with on a photo (a brand name's 'ii', small type)."""
    h, w = template.shape[:2]
    soft = cv2.GaussianBlur(template, (0, 0), 1.2)
    small = cv2.resize(cv2.resize(template, (int(w * 0.7), int(h * 0.7)), interpolation=cv2.INTER_AREA), (w, h))
    shift = cv2.warpAffine(template, np.float32([[1, 0, 3], [0, 1, -2]]), (w, h), borderMode=cv2.BORDER_REPLICATE)
    return [soft, small, shift]


def learn(template: np.ndarray, ocr: Ocr) -> dict | None:
    """The template's lines that OCR reads surely and the same way on photo-like copies of the artwork."""
    h, w = template.shape[:2]
    boxes = ocr.detect(template)
    lines = [{"box": norm_box(b, w, h), "text": t, "variable": bool(VARIABLE.search(t))}
             for b, (t, conf) in zip(boxes, ocr.read(template, boxes))
             if conf >= MIN_CONF and len(_key(t)) >= 3]
    if not lines:
        return None
    zone = {"lines": lines}
    reads = [read_lines(template, zone, ocr)] + [read_lines(im, zone, ocr) for im in _photo_like(template)]
    stable = [{**ln, "strip": text_screen.strip(template, ln["box"])} for k, ln in enumerate(lines)
              if all(_same(ln, r[k][0]) and r[k][1] >= MIN_CONF for r in reads)]
    return {"lines": stable, "ocr": ocr.name, "unstable": len(lines) - len(stable)} if stable else None


def _same(line: dict, text: str) -> bool:
    return shape(text) == shape(line["text"]) if line["variable"] else _key(text) == _key(line["text"])


def _word_diff(got: str, want: str) -> str:
    """The first differing words, as an officer reads them."""
    a, b = want.split(), got.split()
    for op, i0, i1, j0, j1 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        if op != "equal":
            return f"'{' '.join(b[j0:j1]) or '(nothing)'}' where the artwork says '{' '.join(a[i0:i1]) or '(nothing)'}'"
    return f"'{got}' where the artwork says '{want}'"


def distance(a: str, b: str) -> int:
    """Levenshtein distance (insertions, deletions, substitutions)."""
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def read_lines(face: np.ndarray, zone: dict, ocr: Ocr) -> list[tuple[str, float]]:
    h, w = face.shape[:2]
    boxes = []
    for ln in zone["lines"]:
        x0, y0, x1, y1 = ln["box"]
        # Lines are long and thin and close to each other: slack of a tenth of the height above and below (the
        # warp's error), a little more along the line.
        my, mx = MARGIN * (y1 - y0), 0.02 * (x1 - x0) + 0.005
        boxes.append(pixel_box((x0 - mx, y0 - my, x1 + mx, y1 + my), w, h))
    return ocr.read(face, boxes)


def differs_surely(line: dict, read) -> bool | None:
    """Whether a read line differs from the artwork's: False (reads the same), True (differs where every character
    is read surely), None (differs only where a crop cuts a line's ends, or where the reading is unsure: a
    blurred genuine photo's 'four' for 'flour' is one unsure character; a misprint is read surely)."""
    if _same(line, read[0]):
        return False
    if line["variable"] or read[1] < FAIL_CONF:
        return None if read[1] < FAIL_CONF else True
    a, b = _key(line["text"]), _key(read[0])
    sure = [p for ch, p in zip(read[0], getattr(read, "chars", ()) or [1.0] * len(read[0])) if re.match(r"[^\W_]", ch)]
    spans = [(i0, i1, j0, j1) for op, i0, i1, j0, j1 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes()
             if op != "equal"]
    # A number (the digits under a barcode) stands alone and is read whole: its last digit is its check digit.
    slack = 0 if a.isdigit() else END_SLACK
    inner = [(i0, i1, j0, j1) for i0, i1, j0, j1 in spans
             if not (slack and i1 > len(a) - slack - 1 and j1 > len(b) - slack - 1)]
    if not inner:
        return None
    near = [sure[j] for _, _, j0, j1 in inner for j in range(max(0, j0 - 1), min(len(sure), j1 + 1))]
    return True if min(near, default=1.0) >= CHAR_CONF else None


def choose(face: np.ndarray, zone: dict, budget: int | None) -> tuple[list[int], dict[int, tuple[float, float]]]:
    """The lines to recognise (indices, in order) and each fixed line's screen (score, where along the line): the
    `budget` fixed lines least like the artwork; lot/serial lines, which differ on every unit, only where the
    budget has room."""
    lines = zone["lines"]
    if not budget or len(lines) <= budget or not all("strip" in ln for ln in lines):
        return list(range(len(lines))), {}
    screen = {i: text_screen.differ(face, ln["box"], ln["strip"]) for i, ln in enumerate(lines) if not ln["variable"]}
    order = sorted(screen, key=lambda i: -screen[i][0]) + [i for i in range(len(lines)) if i not in screen]
    return sorted(order[:budget]), screen


def segment(line: dict, where: float, face_shape) -> list | None:
    """The part of a long line around `where` (0..1 along it) that is read instead of all of it: SEGMENT line heights
    wide (recognition costs in proportion to the width read). None for a line short enough to read whole."""
    x0, y0, x1, y1 = line["box"]
    h, w = face_shape[:2]
    width = SEGMENT * (y1 - y0) * h / w
    if line["variable"] or width >= 0.8 * (x1 - x0):
        return None
    c = min(max(x0 + where * (x1 - x0), x0 + width / 2), x1 - width / 2)
    return [c - width / 2, y0, c + width / 2, y1]


def _alnum(text: str, chars=None) -> list[tuple[str, float, int]]:
    """(character, probability, position in text) of the letters and digits of a reading: what is compared."""
    probs = chars if chars else [1.0] * len(text)
    return [(ch, p, k) for k, (ch, p) in enumerate(zip(text, probs)) if re.match(r"[^\W_]", ch)]


def _fit(a: str, b: str) -> tuple[int, int, int]:
    """(edits, i0, i1): b aligned with the substring a[i0:i1] that needs the fewest edits (semi-global Levenshtein:
    a part of a line is found wherever it sits in the artwork's line)."""
    prev, start = [0] * (len(a) + 1), list(range(len(a) + 1))
    for i, cb in enumerate(b, 1):
        cur, cst = [i], [0]
        for j, ca in enumerate(a, 1):
            opts = ((prev[j - 1] + (ca != cb), start[j - 1]), (prev[j] + 1, start[j]), (cur[j - 1] + 1, cst[j - 1]))
            d, s0 = min(opts)
            cur.append(d)
            cst.append(s0)
        prev, start = cur, cst
    j = min(range(len(a) + 1), key=lambda j: (prev[j], j))
    return prev[j], start[j], j


def _words_around(text: str, k0: int, k1: int) -> str:
    """The whole words of text that characters k0..k1 (inclusive) touch."""
    while k0 > 0 and not text[k0 - 1].isspace():
        k0 -= 1
    while k1 < len(text) - 1 and not text[k1 + 1].isspace():
        k1 += 1
    return text[k0:k1 + 1]


def segment_differs(line: dict, read) -> tuple[bool | None, str]:
    """Whether a segment's reading differs from the artwork's line where it aligns best: (False, ""), (True,
    "'natral' where the artwork says 'natural'"), (None, ""): too short, unsure, or only at the segment's cut ends
    (the crop cuts letters there, so END_SLACK characters each side are not compared)."""
    got = _alnum(read[0], getattr(read, "chars", ()) or None)[END_SLACK:]
    got = got[:len(got) - END_SLACK]
    art = _alnum(line["text"])
    if len(got) < 4:
        return None, ""
    a, b = "".join(c for c, _, _ in art), "".join(c for c, _, _ in got)
    edits, i0, i1 = _fit(a, b)
    if edits == 0:
        return False, ""
    if read[1] < FAIL_CONF:
        return None, ""
    ops = [o for o in difflib.SequenceMatcher(a=a[i0:i1], b=b, autojunk=False).get_opcodes() if o[0] != "equal"]
    near = [got[j][1] for _, _, _, j0, j1 in ops for j in range(max(0, j0 - 1), min(len(got), j1 + 1))]
    if min(near, default=1.0) < CHAR_CONF:
        return None, ""
    _, ai0, ai1, j0, j1 = ops[0]
    last = len(art) - 1   # an insertion after the artwork's last character starts past its end
    ak = (art[min(i0 + ai0, last)][2], art[min(max(i0 + ai1 - 1, i0 + ai0), last)][2])
    gk = (got[min(j0, len(got) - 1)][2], got[max(j1 - 1, j0) if j1 > j0 else min(j0, len(got) - 1)][2])
    return True, (f"'{_words_around(read[0], *gk)}' where the artwork says "
                  f"'{_words_around(line['text'], *ak)}'")


def _lines(n: int) -> str:
    return f"{n} line" if n == 1 else f"{n} lines"


def check(face: np.ndarray, zone: dict, ocr: Ocr, budget: int | None | str = "default") -> Finding:
    """Recognise the lines `choose` picks (READ_LINES by default, every line with budget None; of a long line, the
    segment around where it differs most) and compare each with the artwork's."""
    idx, screen = choose(face, zone, READ_LINES if budget == "default" else budget)  # type: ignore[arg-type]
    lines = [zone["lines"][i] for i in idx]
    parts = [segment(ln, screen[i][1], face.shape) if i in screen else None for i, ln in zip(idx, lines)]
    reads = read_lines(face, {"lines": [{**ln, "box": p or ln["box"]} for ln, p in zip(lines, parts)]}, ocr)
    screened = ({"lines_screened": len(screen), "screen_worst": max(v[0] for v in screen.values()),
                 "segments_read": sum(p is not None for p in parts)} if screen else {})
    wrong, read = [], 0
    for ln, part, rd in zip(lines, parts, reads):
        text, conf = rd
        if conf < READ_CONF or not text:
            continue   # unread: no evidence either way
        differs, what = segment_differs(ln, rd) if part else (differs_surely(ln, rd), "")
        if differs is None:
            continue   # differing but not surely: no evidence either way
        read += 1
        if differs:
            what = what or (f"the lot/serial line '{text}' does not have the artwork's format '{ln['text']}'"
                            if ln["variable"] else _word_diff(text, ln["text"]))
            wrong.append((ln, part, text, what, distance(_key(text), _key(ln["text"])) if not part else 1))
    box = _union([ln["box"] for ln in zone["lines"]])
    if not read:
        what = (f"the {_lines(len(idx))} least like the artwork could not be read surely" if screen
                else "text not readable on this photo")
        return Finding("text", "unread", 0.0, f"{what} (no evidence either way)", box, screened)
    if not wrong:
        return Finding("text", "pass", 0.0, f"{_lines(read)} of text read as the artwork"
                       + (f" (the {len(idx)} least like it of {len(zone['lines'])})" if screen else ""), box,
                       {"lines_read": read, **screened})
    ln, part, text, what, _ = max(wrong, key=lambda t: t[4])
    more = f" (and {len(wrong) - 1} more line{'s' * (len(wrong) > 2)})" if len(wrong) > 1 else ""
    return Finding("text", "fail", float(len(wrong)), f"text: {what}{more}", part or ln["box"],
                   {"lines_read": read, **screened, "lines_differing": len(wrong),
                    "differences": [{"read": t, "artwork": x["text"], "box": p or x["box"]}
                                    for x, p, t, _, _ in wrong]})


def _union(boxes: list) -> list:
    b = np.asarray(boxes, float)
    return [float(b[:, 0].min()), float(b[:, 1].min()), float(b[:, 2].max()), float(b[:, 3].max())]
