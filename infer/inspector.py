"""The inspector: photo -> verdict, score, reason, product, quality, heatmap. No torch.

    from genuine.infer.inspector import Inspector
    insp = Inspector("model.onnx", templates="datasets/synthpack")   # a comparator: templates from a dataset
    insp = Inspector("model.onnx", references="refs.db")             # ... or from the reference store
    r = insp.inspect("IMG_0001.jpg")        # a path, bytes, PIL image or HxWx3 uint8 array
    print(r.verdict, r.authenticity, r.reason)

`Inspector(model)` is one entry point to two inspectors, chosen by the model's kind:

- ComparatorInspector (the default since issue 11): decode -> rectify onto the product's template (which also names
  the product) -> the face's model input and quality -> infer/judge.py's FaceJudge, the one face -> verdict step
  that scans and evaluate share (comparator, genuine variation, the product's operating point). A photo that cannot
  be rectified is INCONCLUSIVE with rectification's instruction, never scored. A store given as templates is re-read
  when a trainer adds to it, so a new product is inspectable at once.
- PhotoInspector: a whole-photo model (genuine-onnx/1), optionally with a reference gallery (judge_photo()).
"""
from __future__ import annotations

import time

import numpy as np

from genuine.infer import quality
from genuine.infer.contract import DEFAULT_SIM_FLOOR, PRODUCT_MARGIN, PRODUCT_MIN_CONFIDENCE
from genuine.infer.heatmap import where
from genuine.infer.judge import Face, FaceJudge, store_of
from genuine.infer.model_input import face_model_input, photo_input
from genuine.infer.references import fuse
from genuine.infer.result import Result, source_name
from genuine.infer.runtime import ModelError, OnnxModel
from genuine.infer.verdict import GENUINE, INCONCLUSIVE, SUSPECT, decide, decisive, not_validated

__all__ = ["Inspector", "ComparatorInspector", "PhotoInspector", "Result"]


class Inspector:
    """Inspector(model_path, threads=1, references=None, templates=None, calibrate_products=True) opens the model
    and returns the inspector for its kind: a ComparatorInspector or a PhotoInspector."""

    def __new__(cls, model_path, threads: int = 1, references=None, templates=None, calibrate_products: bool = True):
        if cls is not Inspector:
            return super().__new__(cls)
        model = OnnxModel(model_path, threads=threads)
        self = super().__new__(ComparatorInspector if model.is_comparator else PhotoInspector)
        self.model = model   # opened once: __init__ finds it
        return self

    def __init__(self, model_path, threads: int = 1, references=None, templates=None, calibrate_products: bool = True):
        if getattr(self, "model", None) is None:
            self.model = OnnxModel(model_path, threads=threads)
        self.meta, self.size = self.model.meta, self.model.size

    def inspect(self, photo) -> Result:
        raise NotImplementedError


class ComparatorInspector(Inspector):
    """Photos rectified onto their product's template and judged by FaceJudge (infer/judge.py)."""

    def __init__(self, model_path, threads: int = 1, references=None, templates=None, calibrate_products: bool = True):
        """calibrate_products: judge each product the model never trained on by its own operating point from its
        genuine photos in the store (infer/product_calibration.py); False keeps the model's (or its fusion's)
        thresholds for every product, as before issue 22."""
        super().__init__(model_path, threads)
        source = templates if templates is not None else references
        if source is None:
            raise ModelError(f"{model_path}: a comparator model inspects photos against their product's "
                             f"template: pass --templates (a dataset root, an image folder or a reference "
                             f"store .db) or --references DB")
        from genuine.infer.templates import load_templates

        self.judge = FaceJudge(self.model, load_templates(source), store_of(source), calibrate_products)

    @property
    def templates(self):
        return self.judge.templates

    @property
    def fusion(self) -> dict:
        return self.judge.fusion

    def inspect(self, photo, product: str | None = None) -> Result:
        """product: the product the photo shows, when the officer knows it (the declared goods): only its templates
        are matched, so the evidence needed is that its face aligns, not that it beats every look-alike."""
        from genuine.infer.rectify import rectify_photo
        from genuine.infer.zones import SHARP_SIDE

        t0 = time.perf_counter()
        self.judge.refresh()
        r, decode_s = rectify_photo(photo, self.judge.templates, self.model.face_size, product=product,
                                    sharp_side=SHARP_SIDE)
        t1 = time.perf_counter()
        timing = {"decode": round(1000 * decode_s, 2), "rectify": round(1000 * (t1 - t0 - decode_s), 2)}
        src = source_name(photo)
        if not r.ok:
            timing["total"] = round(1000 * (time.perf_counter() - t0), 2)
            return self.judge.not_rectified(src, r.to_dict(), timing)
        x, q = face_model_input(r.face, r.density, self.model.face_size, self.meta.get("quality"))
        [res] = self.judge.score_faces([Face(src, x, q, r.to_dict(), r.template.key, sharp=r.sharp)])
        res.timing_ms = {**timing, **res.timing_ms, "total": round(1000 * (time.perf_counter() - t0), 2)}
        res.face = r.face
        res.H = r.H @ np.diag([r.template.size[0] / r.face.shape[1], r.template.size[1] / r.face.shape[0], 1.0])
        return res


class PhotoInspector(Inspector):
    """A whole-photo model (genuine-onnx/1): the photo letterboxed, classified, optionally matched to references."""

    def __init__(self, model_path, threads: int = 1, references=None, templates=None, calibrate_products: bool = True):
        super().__init__(model_path, threads)
        self.refs, self.fusion = None, {}
        self._gallery, self._refs_version = None, None
        if references is not None:
            from genuine.infer.references import ReferenceDB

            self.refs = ReferenceDB(references)
            self.refs.check_model(self.model.sha256)

    def load(self, photo):
        """Decode and preprocess: (PIL photo, uint8 model input, quality); raises PhotoError."""
        inp = photo_input(photo, self.size, self.meta.get("quality"))
        return inp.img, inp.x, inp.quality

    def inspect(self, photo) -> Result:
        t0 = time.perf_counter()
        img, x, q = self.load(photo)
        t1 = time.perf_counter()
        out = self.model.run(x[None])
        t2 = time.perf_counter()
        r = self.judge_photo({k: v[0] for k, v in out.items()}, q, source_name(photo))
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

    def _classified(self, out: dict, margin: float):
        """(product, its probability, the runner-up when within margin) from the model's product head."""
        if "product_prob" in out:
            order = np.argsort(-np.asarray(out["product_prob"]))
            k = int(order[0])
            product, conf = self.model.products[k], float(out["product_prob"][k])
            tie = None
            if len(order) > 1 and conf - float(out["product_prob"][order[1]]) < margin:
                tie = (self.model.products[int(order[1])], float(out["product_prob"][order[1]]))
            return product, conf, tie
        return (self.model.products[0] if len(self.model.products) == 1 else None), None, None

    def _with_references(self, p: float, th: dict, ref: dict, product: str):
        """(p, thresholds, note): fused with the closest genuine reference where the fusion is calibrated."""
        if ref["genuine"] is None:
            return p, th, f"no genuine references for {product}: classifier only"
        if "weights" in self.fusion:
            return (fuse(p, ref, self.fusion), self.fusion["thresholds"],
                    f"closest genuine reference: {ref['genuine_ref']}, similarity {ref['genuine']:.2f}")
        return p, th, (f"closest genuine reference: {ref['genuine_ref']}, similarity {ref['genuine']:.2f} "
                       f"(fusion not calibrated: classifier score)")

    def judge_photo(self, out: dict, q: quality.Quality, source: str) -> Result:
        """Verdict for one photo from the model's outputs, the references and the quality gate (shared with scans)."""
        p = float(out["p_counterfeit"])
        margin = self.meta.get("product_margin", PRODUCT_MARGIN)   # nearer than this, the product is unknown
        product, conf, tie = self._classified(out, margin)
        th, notes = self.meta["thresholds"], []
        covered = conf is None or conf >= self.meta.get("product_min_confidence", PRODUCT_MIN_CONFIDENCE)
        ref = self._references(out.get("embedding"))
        if ref is not None:  # references name the product, also one the model was never trained on
            product, conf = ref["product"], ref["nearest"]
            covered = ref["nearest"] >= self.fusion.get("sim_floor", DEFAULT_SIM_FLOOR)
            tie = None
            if ref.get("runner_up_sim") is not None and ref["nearest"] - ref["runner_up_sim"] < margin:
                tie = (ref["runner_up"], ref["runner_up_sim"])
            p, th, note = self._with_references(p, th, ref, product)
            notes.append(note)
        elif self.refs is not None:
            notes.append("reference database is empty: classifier only")
        if q.issues:
            verdict, reason = INCONCLUSIVE, "; ".join(advice for _, advice in q.issues)
        elif tie is not None:
            verdict, how = INCONCLUSIVE, "references" if ref is not None else "model"
            reason = (f"product unknown: the {how} cannot tell which product this is ({product} {conf:.3f}, "
                      f"{tie[0]} {tie[1]:.3f}); photograph the side that tells them apart, square-on and closer")
            product = None
        elif not covered and ref is None:
            verdict = INCONCLUSIVE
            reason = (f"the model is unsure which product this is (best guess {product}, confidence {conf:.2f}): "
                      f"retake it square-on and closer; if it is none of the model's products, it is not covered "
                      f"by this model")
        elif not covered:
            verdict = INCONCLUSIVE
            reason = (f"product not covered: no reference is close (nearest: {ref['nearest_ref']}, {product}, "
                      f"similarity {conf:.2f}); add references for this product")
        elif why := not_validated(th):
            verdict, reason = INCONCLUSIVE, f"this model is {why}: examine by hand"
        else:
            verdict = decide(p, th)
            ps, tg, ts = decisive(p, th["threshold_genuine"], th["threshold_suspect"])
            if verdict == SUSPECT:
                reason = (f"signs of counterfeiting (p={ps} >= {ts}); strongest in the "
                          f"{where(out['heatmap'])} of the frame: examine that area")
            elif verdict == GENUINE:
                reason = f"no sign of counterfeiting found (p={ps} < {tg})"
            else:
                reason = (f"uncertain (p={ps}, between {tg} and {ts}): retake closer and in good light, or examine "
                          f"by hand")
        if notes:
            reason += "; " + "; ".join(notes)
        return Result(source, verdict, reason, round(1.0 - p, 6), round(p, 6), product,
                      None if conf is None else round(conf, 6), q.to_dict(), {}, self.model.sha256,
                      reference=ref, heatmap=out.get("heatmap"), embedding=out.get("embedding"))
