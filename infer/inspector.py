"""The inspector: photo -> verdict, score, reason, product, quality, heatmap. No torch.

    from genuine.infer.inspector import Inspector
    insp = Inspector("model.onnx", templates="datasets/synthpack")   # a comparator: templates from a dataset
    insp = Inspector("model.onnx", references="refs.db")             # ... or from the reference store
    r = insp.inspect("IMG_0001.jpg")        # a path, bytes, PIL image or HxWx3 uint8 array
    print(r.verdict, r.authenticity, r.reason)

A comparator model (the default since issue 11) runs: decode -> rectify onto the product's template (which also
names the product) -> quality of the rectified face -> comparator (face against template) -> calibrated verdict.
A photo that cannot be rectified is INCONCLUSIVE with rectification's instruction, never scored. A product the model
never trained on is judged by its own operating point from its genuine photos in the store (at least 10:
infer/product_calibration.py), and is "not calibrated" (INCONCLUSIVE, with how many photos it needs) with fewer. A store given
as templates is re-read when a trainer adds to it, so a new product is inspectable at once. A whole-photo model
(genuine-onnx/1) keeps the older path (judge()).
"""
from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, field

import numpy as np

from genuine.infer import quality
from genuine.infer.contract import DEFAULT_SIM_FLOOR, PRODUCT_MARGIN, PRODUCT_MIN_CONFIDENCE, fusion_of
from genuine.infer.heatmap import where
from genuine.infer.model_input import face_model_input, photo_input
from genuine.infer.photo import printable
from genuine.infer.preprocess import face_input
from genuine.infer.references import fuse
from genuine.infer.runtime import ModelError, OnnxModel
from genuine.infer.verdict import GENUINE, INCONCLUSIVE, SUSPECT, decide, decisive, not_validated


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
    rectification: dict | None = None  # comparator models: how the photo was aligned (infer.rectify.to_dict)
    evidence: dict | None = None   # comparator models: its p, the genuine-variation score and what was fused
    heatmap: np.ndarray | None = field(default=None, repr=False)   # score map on the model input grid
    embedding: np.ndarray | None = field(default=None, repr=False)
    face: np.ndarray | None = field(default=None, repr=False)      # comparator: the rectified face (heatmap's frame)
    H: np.ndarray | None = field(default=None, repr=False)         # comparator: face pixels -> photo pixels

    def to_dict(self) -> dict:
        d = asdict(self)
        for k in ("heatmap", "embedding", "face", "H"):
            d.pop(k)
        return d


def _source(photo) -> str:
    return printable(str(photo)) if isinstance(photo, (str, os.PathLike)) else f"<{type(photo).__name__}>"


class Inspector:
    def __init__(self, model_path, threads: int = 1, references=None, templates=None, calibrate_products: bool = True):
        """calibrate_products: comparator models judge each product with at least MIN_CALIBRATION_PHOTOS genuine
        photos in the store by its own operating point (infer/product_calibration.py); False keeps the model's
        (or its fusion's) thresholds for every product, as before issue 22."""
        self.model = OnnxModel(model_path, threads=threads)
        self.calibrate_products = calibrate_products
        self.meta = self.model.meta
        self.size = self.model.size
        self.refs = None
        self.fusion: dict = {}
        self._gallery, self._refs_version = None, None
        if self.model.is_comparator:
            source = templates if templates is not None else references
            if source is None:
                raise ModelError(f"{model_path}: a comparator model inspects photos against their product's "
                                 f"template: pass --templates (a dataset root, an image folder or a reference "
                                 f"store .db) or --references DB")
            from genuine.infer.templates import _is_sqlite, load_templates

            self.templates, self._inputs = load_templates(source), {}   # names the path and why, when it cannot
            self._store, self.variation, self.calibrations = None, {}, None
            self.fusion = fusion_of(self.meta)
            if os.path.isfile(source) and _is_sqlite(source):
                from genuine.infer.references import ReferenceDB

                # One connection kept open: SQLite's data_version is only comparable on the same connection.
                self._store = ReferenceDB(source)
                self._load_variation()
            return
        if references is not None:
            from genuine.infer.references import ReferenceDB

            self.refs = ReferenceDB(references)
            self.refs.check_model(self.model.sha256)

    def _load_variation(self) -> None:
        """Each product's genuine-variation model and own operating point from the store's genuine photos (each
        computed once, cached there)."""
        from genuine.infer.product_calibration import ProductCalibrations

        if self.fusion:
            from genuine.infer.variation_store import VariationModels

            self.variation = VariationModels(self._store.conn, self.model.face_size)
        self.calibrations = ProductCalibrations(self._store.conn, self.model, self.fusion)
        self._templates_version = self._store.version()

    def _quietly(self, fn):
        """fn() that may write the store's own caches: that write is not a trainer's change, so it must not make
        the next photo re-read the templates."""
        unchanged = self._store.version() == self._templates_version
        out = fn()
        if unchanged:
            self._templates_version = self._store.version()
        return out

    def _load_templates(self) -> None:
        """Re-read a store's templates and genuine photos when it changed since the last look (a trainer added)."""
        if self._store is None:
            return
        if self._store.version() != self._templates_version:
            from genuine.infer.keypoints import TemplateSet

            found = self._store.templates()
            if found:   # a store emptied meanwhile keeps the templates it had rather than failing mid-run
                self.templates, self._inputs = TemplateSet(found), {}
            self._load_variation()

    def variation_score(self, x: np.ndarray, product: str, template: str | None):
        """(score, map on the heatmap's grid) of the face's genuine variation (infer/variation.py) when its product
        has genuine photos, else None."""
        if not (self.fusion and self.variation):
            return None
        m = self._quietly(lambda: self.variation.get((product, template)))   # fitted and cached on first use
        if m is None:
            return None
        from genuine.infer.variation import evidence

        return evidence(m, x)

    def _template_input(self, t) -> np.ndarray:
        if id(t) not in self._inputs:   # a template's model input is computed once, not per photo
            self._inputs[id(t)] = face_input(t.image, self.model.face_size)
        return self._inputs[id(t)]

    def inspect_comparator(self, photo) -> Result:
        from genuine.infer.rectify import rectify_photo

        t0 = time.perf_counter()
        self._load_templates()
        r, decode_s = rectify_photo(photo, self.templates, self.model.face_size)
        t2 = time.perf_counter()
        timing = {"decode": round(1000 * decode_s, 2), "rectify": round(1000 * (t2 - t0 - decode_s), 2)}
        src = _source(photo)
        if not r.ok:
            timing["total"] = round(1000 * (time.perf_counter() - t0), 2)
            return self.not_rectified(src, r.to_dict(), timing)
        x, q = face_model_input(r.face, r.density, self.model.face_size, self.meta.get("quality"))
        out = {k: v[0] for k, v in self.model.compare(x[None], self._template_input(r.template)[None]).items()}
        t3 = time.perf_counter()
        out["variation"] = self.variation_score(x, r.product, r.template.key)
        t4 = time.perf_counter()
        timing.update({"model": round(1000 * (t3 - t2), 2), "variation": round(1000 * (t4 - t3), 2),
                       "total": round(1000 * (t4 - t0), 2)})
        res = self.judge_face(out, q, r.to_dict(), src)
        res.timing_ms, res.face = timing, r.face
        res.H = r.H @ np.diag([r.template.size[0] / r.face.shape[1], r.template.size[1] / r.face.shape[0], 1.0])
        return res

    def not_rectified(self, source: str, rect: dict, timing: dict | None = None) -> Result:
        """A photo whose package could not be aligned: no score (nothing was compared), rectify's instruction.
        The closest product, if any, stays in rectification["closest"]."""
        return Result(source, INCONCLUSIVE, rect["reason"], None, None, None, None, {"issues": [rect["reason_code"]]},
                      timing or {}, self.model.sha256, rectification=rect)

    def operating_point(self, product: str, template: str | None, fused: bool) -> dict:
        """The thresholds a comparator's score of this product is judged by, and where they come from:
        {"source": "product" | "fusion" | "model", "thresholds" (what decide reads), "calibration" (the product
        calibration's evidence, or None), "note" (or None), "not_calibrated" (the reason, or None)}.

        A product the model was trained on keeps the model's thresholds (its validation is the model's own); any
        other product is judged by its own operating point (infer/product_calibration.py) when it has at least
        MIN_CALIBRATION_PHOTOS genuine photos in the store, and is not calibrated otherwise. A model made
        before per-product calibration keeps its thresholds for every product, as before."""
        from genuine.infer.product_calibration import (MIN_CALIBRATION_PHOTOS, PREDATES, decision_thresholds,
                                                       logit_stats)

        th, source = (self.fusion["thresholds"], "fusion") if fused else (self.meta["thresholds"], "model")
        op = {"source": source, "thresholds": th, "calibration": None, "note": None, "not_calibrated": None}
        if not self.calibrate_products:
            return op
        if logit_stats(th) is None:
            return {**op, "note": PREDATES}
        if product in self.meta.get("products", []):
            # Trained on it: the model's validation held out this product's genuine photos and its counterfeits,
            # stronger evidence than genuine photos alone (on SynthPack test, the products' own points from 100
            # genuine train photos each decided 37% of photos instead of 51%, with no fewer mistakes).
            return op
        cals = self.calibrations
        n = cals.count(product, template) if cals is not None and template else 0
        if n < MIN_CALIBRATION_PHOTOS:
            held = (f"{n} genuine photos in the reference store" if self._store is not None else
                    "no reference store holds its genuine photos (--templates is not a store)")
            return {**op, "not_calibrated": (
                f"{product} is not calibrated for this model: {held}, {MIN_CALIBRATION_PHOTOS} needed (genuine "
                f"references add --db DB --product {product} --genuine-photos PHOTOS)")}
        t = next((t for t in self.templates.templates if t.key == template and t.product == product
                  and not getattr(t, "view", False)), None)
        if t is None or cals.fused(product, template) != fused:
            return {**op, "note": "product calibration not applicable to this score (template or fusion differs)"}
        try:
            cal = self._quietly(lambda: cals.get(product, template, self._template_input(t)))
        except ValueError as e:   # the operating point it standardises against predates genuine_logit
            return {**op, "note": str(e)}
        return {"source": "product", "thresholds": decision_thresholds(cal), "calibration": cal, "note": None,
                "not_calibrated": None}

    def judge_face(self, out: dict, q: quality.Quality, rect: dict, source: str) -> Result:
        """Verdict for one rectified face from the comparator's outputs (and its genuine-variation score, "variation",
        when the product has genuine photos in the store) and the face's quality (shared with scans)."""
        p_comp, heat, product = float(out["p_counterfeit"]), out["heatmap"], rect["product"]
        s, vmap = out.get("variation") or (None, None)
        evidence = {"comparator_p": round(p_comp, 6), "variation_score": None if s is None else round(float(s), 4),
                    "fused": s is not None}
        if s is not None:
            from genuine.infer.variation import contributions, fused_p

            p = fused_p(p_comp, s, self.fusion)
            against = f"the genuine reference of {product} and its genuine photos"
            c_comp, c_var = contributions(p_comp, s, self.fusion)
            evidence["strongest"] = "variation" if c_var > c_comp else "comparator"
            if c_var > c_comp and vmap is not None and vmap.shape == heat.shape:
                heat = vmap   # the region named and drawn is where the stronger evidence lies
        else:
            p = p_comp
            against = f"the genuine reference of {product}"
        op = self.operating_point(product, rect.get("template"), s is not None)
        th, cal = op["thresholds"], op["calibration"]
        evidence["thresholds"] = {"source": op["source"], "threshold_genuine": th["threshold_genuine"],
                                  "threshold_suspect": th["threshold_suspect"], "calibration": cal}
        if op["note"]:
            evidence["thresholds"]["note"] = op["note"]
        own = f", this product's operating point from its {cal['photos']} genuine photos" if cal else ""
        if q.issues:
            verdict, reason = INCONCLUSIVE, "; ".join(advice for _, advice in q.issues)
        elif why := not_validated(th):
            verdict, reason = INCONCLUSIVE, f"this model is {why} (for {product}): examine by hand"
        elif op["not_calibrated"]:
            verdict, reason = INCONCLUSIVE, op["not_calibrated"]
        else:
            verdict = decide(p, th)
            ps, tg, ts = decisive(p, th["threshold_genuine"], th["threshold_suspect"])
            if verdict == SUSPECT:
                reason = (f"signs of counterfeiting (p={ps} >= {ts}{own}): the package "
                          f"differs from {against} most in its {where(heat)}: examine that area")
            elif verdict == GENUINE:
                reason = f"matches {against}: no sign of counterfeiting found (p={ps} < {tg}{own})"
            else:
                reason = (f"uncertain (p={ps}, between {tg} and {ts}{own}): retake closer and in good light, or "
                          f"examine by hand; the largest difference is in the package's {where(heat)}")
        if product not in self.meta.get("products", []):
            reason += "; this product was not in the model's training data"
        if s is None and self.fusion:
            reason += (f"; compared with its template only: genuine photos of {product} in the reference store "
                       f"(genuine references add --genuine-photos) would also check it against how genuine units vary")
        return Result(source, verdict, reason, round(1.0 - p, 6), round(p, 6), product, rect["quality"],
                      q.to_dict(), {}, self.model.sha256, rectification=rect, evidence=evidence, heatmap=heat)

    def load(self, photo):
        """Decode and preprocess: (PIL photo, uint8 model input, quality); raises PhotoError."""
        inp = photo_input(photo, self.size, self.meta.get("quality"))
        return inp.img, inp.x, inp.quality

    def inspect(self, photo) -> Result:
        if self.model.is_comparator:
            return self.inspect_comparator(photo)
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
        product, conf, tie = None, None, None
        margin = self.meta.get("product_margin", PRODUCT_MARGIN)   # nearer than this, the product is unknown
        if "product_prob" in out:
            order = np.argsort(-np.asarray(out["product_prob"]))
            k = int(order[0])
            product, conf = self.model.products[k], float(out["product_prob"][k])
            if len(order) > 1 and conf - float(out["product_prob"][order[1]]) < margin:
                tie = (self.model.products[int(order[1])], float(out["product_prob"][order[1]]))
        elif len(self.model.products) == 1:
            product = self.model.products[0]
        th, notes = self.meta["thresholds"], []
        covered = conf is None or conf >= self.meta.get("product_min_confidence", PRODUCT_MIN_CONFIDENCE)
        ref = self._references(out.get("embedding"))
        if ref is not None:  # references name the product, also one the model was never trained on
            product, conf = ref["product"], ref["nearest"]
            covered = ref["nearest"] >= self.fusion.get("sim_floor", DEFAULT_SIM_FLOOR)
            tie = None
            if ref.get("runner_up_sim") is not None and ref["nearest"] - ref["runner_up_sim"] < margin:
                tie = (ref["runner_up"], ref["runner_up_sim"])
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
