"""The one step from aligned faces to verdicts. `genuine inspect` (a batch of one), scan workers and Ray actors
(infer/scan.py), and `genuine evaluate` (train/evaluate.py) all call it, so every kind of evidence (comparator,
genuine variation, zone checks, each product's operating point) is added here once. No torch.

    judge = FaceJudge(OnnxModel("model.onnx"), templates, store=ReferenceDB("refs.db"))
    faces = [Face("IMG_0001.jpg", x, quality, rect.to_dict(), rect.template.key)]   # x: face_model_input's
    [result] = judge.score_faces(faces)          # infer.inspector.Result: verdict, reason, evidence, heatmap

The backend is anything with the comparator contract: `compare(faces, templates) -> {"p_counterfeit",
"heatmap"}` on uint8 NHWC batches at `face_size`, plus `meta` and `sha256`: an ONNX session (infer.runtime.OnnxModel)
or a torch checkpoint (train/evaluate.py's TorchComparator), the way one interface lets `val` score any format.

A face names the template it was aligned to by its key (Template.key, a hash of its pixels), never by a position in
a list: a scan's workers, its Ray actors and the main process each load the store, and a template added meanwhile
shifts positions but not keys.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

import numpy as np

from genuine.infer import quality as quality_mod
from genuine.infer.contract import fusion_of
from genuine.infer.heatmap import where
from genuine.infer.keypoints import Template, TemplateSet
from genuine.infer.preprocess import face_input
from genuine.infer.result import Result
from genuine.infer.verdict import GENUINE, INCONCLUSIVE, SUSPECT, decide, decisive, not_validated
from genuine.infer.zone_book import ZoneBook
from genuine.infer.zones import check as check_zones, retake_advice, weighed


class TemplateMissing(KeyError):
    """A face names a template this judge does not hold (removed from the store since the face was aligned)."""


@dataclass
class Face:
    """One aligned face to judge: the comparator's input and what the verdict needs about how it was found."""
    source: str                        # the photo, as results name it
    x: np.ndarray                      # (h, w, 3) uint8 at the model's face_size (infer.model_input.face_model_input)
    quality: quality_mod.Quality       # measured on x
    rect: dict                         # infer.rectify.Rectified.to_dict(): product, template key, quality, corners
    template: str                      # Template.key of the template x is aligned to
    variation: tuple | None = None     # (score, map) of the product's genuine variation, when computed elsewhere
    variation_done: bool = False       # True: `variation` was computed (None then means the product has none)
    sharp: np.ndarray | None = None    # the face at the template's resolution (rectify_photo(sharp_side)): zones
    findings: list | None = None       # the zone checks' Findings, when computed elsewhere (scan workers)
    extra: dict = field(default_factory=dict)   # carried through untouched (a scan's entry and sha256)

    @property
    def product(self) -> str:
        return self.rect["product"]


class FaceJudge:
    """Verdicts for aligned faces against their product's template, genuine variation and operating point."""

    def __init__(self, model, templates: TemplateSet, store=None, calibrate_products: bool = True):
        """model: the backend (see the module docstring); templates: what faces are aligned to; store: the reference
        store (infer.references.ReferenceDB) holding genuine photos, or None; calibrate_products: judge each product
        the model never trained on by its own operating point (infer/product_calibration.py), False: the model's
        (or its fusion's) thresholds for every product."""
        self.model, self.meta = model, model.meta
        self.fusion = fusion_of(self.meta)
        self.store, self.calibrate_products = store, calibrate_products
        self.variation, self.calibrations = {}, None
        self.zone_book = ZoneBook(store.conn if store is not None else None)
        self._use(templates)
        if store is not None:
            self._load_store()

    # -- templates and the store ---------------------------------------------------------------------------
    def _use(self, templates: TemplateSet) -> None:
        self.templates = templates
        self._by_key = {t.key: t for t in templates.templates if not t.view}
        self._inputs: dict[str, np.ndarray] = {}

    def _load_store(self) -> None:
        """Each product's genuine-variation model and own operating point from the store (each fitted once and
        cached there)."""
        from genuine.infer.product_calibration import ProductCalibrations

        if self.fusion:
            from genuine.infer.variation_store import VariationModels

            self.variation = VariationModels(self.store.conn, self.model.face_size)
        self.calibrations = ProductCalibrations(self.store.conn, self.model, self.fusion)
        self._version = self.store.version()

    def refresh(self) -> bool:
        """Re-read the store's templates and genuine photos when a trainer changed it since the last look: a new
        product is inspectable at once. True when something was re-read."""
        if self.store is None or self.store.version() == self._version:
            return False
        found = self.store.templates()
        if found:   # a store emptied meanwhile keeps the templates it had rather than failing mid-run
            self._use(TemplateSet(found))
        self._load_store()
        return True

    def quietly(self, fn):
        """fn() that may write the store's own caches: that write is not a trainer's change, so it must not make
        the next photo re-read the templates."""
        if self.store is None:
            return fn()
        unchanged = self.store.version() == self._version
        out = fn()
        if unchanged:
            self._version = self.store.version()
        return out

    def knows(self, key: str) -> bool:
        """Whether a face template has this key; the store is re-read once when not (added meanwhile)."""
        if key not in self._by_key:
            self.refresh()
        return key in self._by_key

    def template(self, key: str) -> Template:
        """The face template with this key (see knows)."""
        if not self.knows(key):
            raise TemplateMissing(f"template {key} is not in the reference store any more (removed during the run?)")
        return self._by_key[key]

    def template_input(self, t: Template) -> np.ndarray:
        if t.key not in self._inputs:   # a template's model input is computed once, not per photo
            self._inputs[t.key] = face_input(t.image, self.model.face_size)
        return self._inputs[t.key]

    # -- evidence -------------------------------------------------------------------------------------------
    def variation_score(self, x: np.ndarray, product: str, template: str | None):
        """(score, map on the heatmap's grid) of the face's genuine variation (infer/variation.py) when its product
        has genuine photos in the store, else None."""
        if not (self.fusion and self.variation):
            return None
        m = self.quietly(lambda: self.variation.get((product, template)))   # fitted and cached on first use
        if m is None:
            return None
        from genuine.infer.variation import evidence

        return evidence(m, x)

    def zones_of(self, template: str, learning: bool = True) -> dict | None:
        """The zones of a face template (learnt once, then read from the store or the cache folder; with
        learning=False only when already learnt)."""
        t = self.template(template)
        return self.quietly(lambda: self.zone_book.get(t, learning))

    def zone_findings(self, f: Face) -> list:
        """The zone checks of a face: carried by it (scan workers), or run on its sharp face, or none."""
        if f.findings is not None:
            return f.findings
        return check_zones(f.sharp, self.zones_of(f.template)) if f.sharp is not None else []

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
            held = (f"{n} genuine photos in the reference store" if self.store is not None else
                    "no reference store holds its genuine photos (--templates is not a store)")
            return {**op, "not_calibrated": (
                f"{product} is not calibrated for this model: {held}, {MIN_CALIBRATION_PHOTOS} needed (genuine "
                f"references add --db DB --product {product} --genuine-photos PHOTOS)")}
        t = self._by_key.get(template)
        if t is None or t.product != product or cals.fused(product, template) != fused:
            return {**op, "note": "product calibration not applicable to this score (template or fusion differs)"}
        try:
            cal = self.quietly(lambda: cals.get(product, template, self.template_input(t)))
        except ValueError as e:   # the operating point it standardises against predates genuine_logit
            return {**op, "note": str(e)}
        return {"source": "product", "thresholds": decision_thresholds(cal), "calibration": cal, "note": None,
                "not_calibrated": None}

    # -- the verdict ----------------------------------------------------------------------------------------
    def score_faces(self, faces: list[Face]) -> list[Result]:
        """Results for aligned faces, in order: the comparator runs once per batch; genuine variation where a face
        does not carry it already (scan workers score it in parallel); then each face's verdict."""
        if not faces:
            return []
        t0 = time.perf_counter()
        tins = np.stack([self.template_input(self.template(f.template)) for f in faces])
        out = self.model.compare(np.stack([f.x for f in faces]), tins)
        model_ms = 1000 * (time.perf_counter() - t0) / len(faces)
        results = []
        for k, f in enumerate(faces):
            t1 = time.perf_counter()
            o = {n: v[k] for n, v in out.items()}
            o["variation"] = f.variation if f.variation_done else self.variation_score(f.x, f.product, f.template)
            t2 = time.perf_counter()
            o["zones"] = self.zone_findings(f)
            r = self.verdict(o, f.quality, f.rect, f.source)
            r.timing_ms = {"model": round(model_ms, 2), "variation": round(1000 * (t2 - t1), 2),
                           "zones": round(1000 * (time.perf_counter() - t2), 2)}
            results.append(r)
        return results

    def not_rectified(self, source: str, rect: dict, timing: dict | None = None) -> Result:
        """A photo whose package could not be aligned: no score (nothing was compared), rectify's instruction.
        The closest product, if any, stays in rectification["closest"]."""
        return Result(source, INCONCLUSIVE, rect["reason"], None, None, None, None, {"issues": [rect["reason_code"]]},
                      timing or {}, self.model.sha256, rectification=rect)

    def verdict(self, out: dict, q: quality_mod.Quality, rect: dict, source: str) -> Result:
        """Verdict for one rectified face from the comparator's outputs (and its genuine-variation score,
        out["variation"], when the product has genuine photos in the store) and the face's quality."""
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
        findings = out.get("zones") or []
        p, evidence["zones"] = weighed(p, findings, self.meta.get("zones"))
        op = self.operating_point(product, rect.get("template"), s is not None)
        th, cal = op["thresholds"], op["calibration"]
        evidence["thresholds"] = {"source": op["source"], "threshold_genuine": th["threshold_genuine"],
                                  "threshold_suspect": th["threshold_suspect"], "calibration": cal}
        if op["note"]:
            evidence["thresholds"]["note"] = op["note"]
        verdict, reason = self._decide(p, th, q, op, product, against, heat)
        reason += zone_reason(verdict, findings, evidence["zones"])
        if product not in self.meta.get("products", []):
            reason += "; this product was not in the model's training data"
        if s is None and self.fusion:
            reason += (f"; compared with its template only: genuine photos of {product} in the reference store "
                       f"(genuine references add --genuine-photos) would also check it against how genuine units vary")
        return Result(source, verdict, reason, round(1.0 - p, 6), round(p, 6), product, rect.get("quality"),
                      q.to_dict(), {}, self.model.sha256, rectification=rect, evidence=evidence, heatmap=heat)

    @staticmethod
    def _decide(p: float, th: dict, q, op: dict, product: str, against: str, heat) -> tuple[str, str]:
        """(verdict, reason): the quality gate, the model's validation, the product's calibration, then p."""
        cal = op["calibration"]
        own = f", this product's operating point from its {cal['photos']} genuine photos" if cal else ""
        if q.issues:
            return INCONCLUSIVE, "; ".join(advice for _, advice in q.issues)
        if why := not_validated(th):
            return INCONCLUSIVE, f"this model is {why} (for {product}): examine by hand"
        if op["not_calibrated"]:
            return INCONCLUSIVE, op["not_calibrated"]
        verdict = decide(p, th)
        ps, tg, ts = decisive(p, th["threshold_genuine"], th["threshold_suspect"])
        if verdict == SUSPECT:
            return verdict, (f"signs of counterfeiting (p={ps} >= {ts}{own}): the package differs from {against} "
                             f"most in its {where(heat)}: examine that area")
        if verdict == GENUINE:
            return verdict, f"matches {against}: no sign of counterfeiting found (p={ps} < {tg}{own})"
        return verdict, (f"uncertain (p={ps}, between {tg} and {ts}{own}): retake closer and in good light, or "
                         f"examine by hand; the largest difference is in the package's {where(heat)}")


def zone_reason(verdict: str, findings: list, zones: dict) -> str:
    """What the zone checks add to the reason: each failing zone in an officer's words, and whether it counted;
    on an uncertain verdict, what stopped the zones that could not be read and how to retake."""
    failed = [f.message for f in findings if f.state == "fail"]
    advice = retake_advice(findings) if verdict == INCONCLUSIVE else []
    retake = f"; to check the barcode and print, retake: {'; '.join(advice)}" if advice else ""
    if not failed:
        return retake
    if not zones.get("weighed"):
        return f"; zone checks (not part of the score: {zones['why']}): " + "; ".join(failed) + retake
    return ("; " if verdict == SUSPECT else "; but ") + "; ".join(failed) + retake


def store_of(source):
    """The reference store (infer.references.ReferenceDB) when `source` is one (a SQLite file), else None. One
    connection is kept open: SQLite's data_version is only comparable on the same connection."""
    from genuine.infer.templates import _is_sqlite

    if source is None or not (os.path.isfile(source) and _is_sqlite(source)):
        return None
    from genuine.infer.references import ReferenceDB

    return ReferenceDB(source)
