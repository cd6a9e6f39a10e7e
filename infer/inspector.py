"""The inspector: photo -> verdict, score, reason, product, quality, heatmap. No torch.

    from infer.inspector import Inspector
    insp = Inspector("model.onnx")
    r = insp.inspect("IMG_0001.jpg")        # a path, bytes, PIL image or HxWx3 uint8 array
    print(r.verdict, r.authenticity, r.reason)
"""
from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, field

import numpy as np

from infer import quality
from infer.heatmap import where
from infer.photo import load_photo
from infer.preprocess import decode_side, prepare
from infer.references import DEFAULT_SIM_FLOOR, fuse
from infer.runtime import OnnxModel
from infer.verdict import GENUINE, INCONCLUSIVE, SUSPECT, decide


@dataclass
class Result:
    source: str
    verdict: str                   # GENUINE | SUSPECT | INCONCLUSIVE
    reason: str                    # what the officer can act on
    authenticity: float            # calibrated probability of genuine (1 - p_counterfeit)
    p_counterfeit: float
    product: str | None
    product_confidence: float | None
    quality: dict
    timing_ms: dict
    model_sha256: str
    reference: dict | None = None  # closest references and similarities, when inspecting with --references
    heatmap: np.ndarray | None = field(default=None, repr=False)   # score map on the model input grid
    embedding: np.ndarray | None = field(default=None, repr=False)

    def to_dict(self) -> dict:
        d = asdict(self)
        d.pop("heatmap"), d.pop("embedding")
        return d


def _source(photo) -> str:
    return str(photo) if isinstance(photo, (str, os.PathLike)) else f"<{type(photo).__name__}>"


class Inspector:
    def __init__(self, model_path, threads: int = 1, references=None):
        self.model = OnnxModel(model_path, threads=threads)
        self.meta = self.model.meta
        self.size = self.model.size
        self.refs = None
        self.fusion: dict = {}
        self._gallery, self._refs_version = None, None
        if references is not None:
            from infer.references import ReferenceDB

            self.refs = ReferenceDB(references)
            self.refs.check_model(self.model.sha256)

    def load(self, photo):
        """Decode and preprocess: (PIL photo, uint8 model input, quality); raises PhotoError."""
        img = load_photo(photo, min_side=decode_side(self.size))
        x = prepare(img, self.size)
        return img, x, quality.assess(x, img.size, self.size, self.meta.get("quality"))

    def inspect(self, photo) -> Result:
        t0 = time.perf_counter()
        img, x, q = self.load(photo)
        t1 = time.perf_counter()
        out = self.model.run(x[None])
        t2 = time.perf_counter()
        r = self.judge({k: v[0] for k, v in out.items()}, q, _source(photo))
        r.timing_ms = {"decode": round(1000 * (t1 - t0), 2), "model": round(1000 * (t2 - t1), 2),
                       "total": round(1000 * (time.perf_counter() - t0), 2)}
        return r

    def _references(self, embedding) -> dict | None:
        """Match against the reference gallery, reloaded whenever the database changed (a trainer added)."""
        if self.refs is None or embedding is None:
            return None
        v = self.refs.version()
        if v != self._refs_version:
            self._gallery, self._refs_version = self.refs.gallery(), v
            self.fusion = self.refs.meta("fusion") or {}
            if self.fusion.get("model_sha256") not in (None, self.model.sha256):
                self.fusion = {}  # calibrated for another model's embeddings
        return self._gallery.match(embedding)

    def judge(self, out: dict, q: quality.Quality, source: str) -> Result:
        """Verdict for one photo from the model's outputs, the references and the quality gate (shared with scans)."""
        p = float(out["p_counterfeit"])
        product, conf = None, None
        if "product_prob" in out:
            k = int(np.argmax(out["product_prob"]))
            product, conf = self.model.products[k], float(out["product_prob"][k])
        elif len(self.model.products) == 1:
            product = self.model.products[0]
        th, notes = self.meta["thresholds"], []
        covered = conf is None or conf >= self.meta.get("product_min_confidence", 0.5)
        ref = self._references(out.get("embedding"))
        if ref is not None:  # references name the product, also one the model was never trained on
            product, conf = ref["product"], ref["nearest"]
            covered = ref["nearest"] >= self.fusion.get("sim_floor", DEFAULT_SIM_FLOOR)
            if ref["genuine"] is None:
                notes.append(f"no genuine references for {product}: classifier only")
            elif "weights" in self.fusion:
                p, th = fuse(p, ref, self.fusion), self.fusion["thresholds"]
                notes.append(f"closest genuine reference: {ref['genuine_ref']}, similarity {ref['genuine']:.2f}")
            else:
                notes.append(f"closest genuine reference: {ref['genuine_ref']}, similarity {ref['genuine']:.2f} "
                             f"(fusion not calibrated: classifier score)")
        elif self.refs is not None:
            notes.append("reference database is empty: classifier only")
        if q.issues:
            verdict, reason = INCONCLUSIVE, "; ".join(advice for _, advice in q.issues)
        elif not covered and ref is None:
            verdict = INCONCLUSIVE
            reason = (f"product not covered by this model (closest: {product}, confidence {conf:.2f}); "
                      f"check the product or use a model trained for it")
        elif not covered:
            verdict = INCONCLUSIVE
            reason = (f"product not covered: no reference is close (nearest: {ref['nearest_ref']}, {product}, "
                      f"similarity {conf:.2f}); add references for this product")
        else:
            verdict = decide(p, th)
            if verdict == SUSPECT:
                reason = (f"signs of counterfeiting (p={p:.2f} >= {th['threshold_suspect']:.2f}); strongest in the "
                          f"{where(out['heatmap'])} of the frame: examine that area")
            elif verdict == GENUINE:
                reason = f"no sign of counterfeiting found (p={p:.2f} < {th['threshold_genuine']:.2f})"
            else:
                reason = (f"uncertain (p={p:.2f}, between {th['threshold_genuine']:.2f} and "
                          f"{th['threshold_suspect']:.2f}): retake closer and in good light, or examine by hand")
        if notes:
            reason += "; " + "; ".join(notes)
        return Result(source, verdict, reason, round(1.0 - p, 6), round(p, 6), product,
                      None if conf is None else round(conf, 6), q.to_dict(), {}, self.model.sha256,
                      reference=ref, heatmap=out.get("heatmap"), embedding=out.get("embedding"))
