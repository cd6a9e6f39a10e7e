"""Comparator data: a dataset split -> (face, template) pairs at the comparator's input size, and their augmentation.

    ds = discover("datasets/synthpack")
    templates = load_templates(ds.root)
    fs = FaceSet.build(ds.root, select(ds, "train"), templates, (320, 208))
    fs.faces[i], fs.templates[fs.product[i]], fs.labels[i]      # uint8 (H, W, 3), uint8 (H, W, 3), 0/1
    fs.not_aligned                                               # [(record, reason)]: never silently dropped
    view = augment(fs.faces[i], np.random.default_rng(seed))     # jitter + one photometric gain on the whole face

Faces come from train/faces.py (rectified once per dataset, cached), so every consumer (training, evaluation of a
checkpoint or of an exported ONNX file) sees the pixels the inspector would rectify.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from genuine.infer.keypoints import TemplateSet
from genuine.infer.preprocess import face_input
from genuine.train.faces import aligned_faces
from genuine.train.layout import Record

JITTER_PX = 2.0       # alignment error to tolerate, in input pixels (rectification is good to about a pixel)
JITTER_DEG = 1.0
JITTER_SCALE = 0.015
GAIN = (0.75, 1.25)   # exposure, one factor on all channels: a per-channel shift is the colour defect itself
GAMMA = (0.85, 1.15)


@dataclass
class FaceSet:
    records: list[Record]            # aligned photos, in order
    faces: np.ndarray                # (n, H, W, 3) uint8
    labels: np.ndarray               # (n,) int: 1 counterfeit
    product: np.ndarray              # (n,) int index into names
    names: list[str]                 # products, sorted
    templates: np.ndarray            # (len(names), H, W, 3) uint8
    not_aligned: list[tuple[Record, str]] = field(default_factory=list)
    density: np.ndarray | None = None   # (n,) photo pixels per input pixel: the inspector's "too small" gate
    zones: list[str] | None = None      # (n,) the zone checks' Findings as JSON, when built with zones

    def __len__(self) -> int:
        return len(self.records)

    @classmethod
    def build(cls, root, records: list[Record], templates: TemplateSet, size: tuple[int, int],
              workers: int = 0, zones: dict | None = None) -> "FaceSet":
        """zones: {product: infer.zones.learn's dict} to also run the zone checks on each photo's sharp face."""
        by_name = {t.product: t for t in templates.templates}
        faces = aligned_faces(root, records, templates, workers=workers, face_size=size, zones=zones)
        names = sorted(p for p in faces if p in by_name)
        keep, arrays, dens, bad, found = [], [], [], [], []
        for product, f in faces.items():
            for j, i in enumerate(f.index):
                if f.ok[j]:
                    keep.append(int(i))
                    arrays.append(face_input(f.faces[j], size))
                    dens.append(float(f.density[j]))
                    found.append(str(f.zones[j]) if f.zones is not None else "")
                else:
                    bad.append((records[i], f.reasons[j]))
        order = np.argsort(keep, kind="stable")          # back to the records' order
        recs = [records[keep[k]] for k in order]
        w, h = size
        return cls(recs, np.stack([arrays[k] for k in order]) if recs else np.zeros((0, h, w, 3), np.uint8),
                   np.array([r.label == "counterfeit" for r in recs], int),
                   np.array([names.index(r.product) for r in recs], int), names,
                   np.stack([face_input(by_name[n].image, size) for n in names]) if names
                   else np.zeros((0, h, w, 3), np.uint8), bad, np.array([dens[k] for k in order], float),
                   [found[k] for k in order] if zones else None)


def refined_zones(zones: dict, genuine: FaceSet) -> dict:
    """{product: zones} with each product's genuine faces of `genuine` (their model inputs suffice for the inks'
    colours) as the spread the colour zone is judged against (infer.zones.refine)."""
    from genuine.infer.zones import refine

    out = {}
    for product, z in zones.items():
        k = genuine.names.index(product) if product in genuine.names else -1
        faces = genuine.faces[(genuine.product == k) & (genuine.labels == 0)] if k >= 0 else []
        out[product] = refine(z, list(faces)) if z else z
    return out


def twin_pairs(fs: FaceSet) -> np.ndarray:
    """(k, 2) indices (counterfeit, its genuine twin) where SynthPack --twins photographed both under one capture:
    twin item ids end in "t", and photo k of both shares the capture. Empty for other datasets."""
    where = {(r.item_id, r.extra.get("photo")): i for i, r in enumerate(fs.records)}
    pairs = [(i, where[(r.item_id + "t", r.extra.get("photo"))]) for i, r in enumerate(fs.records)
             if r.label == "counterfeit" and r.item_id and (r.item_id + "t", r.extra.get("photo")) in where]
    return np.array(pairs, int).reshape(-1, 2)


def augment(face: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One training view of a face: a small similarity jitter (alignment is never exact) and one exposure
    gain and gamma for the whole face. Genuine printing tolerances are left to the data."""
    h, w = face.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), rng.uniform(-JITTER_DEG, JITTER_DEG),
                                1.0 + rng.uniform(-JITTER_SCALE, JITTER_SCALE))
    m[:, 2] += rng.uniform(-JITTER_PX, JITTER_PX, 2)
    out = cv2.warpAffine(face, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    x = (out.astype(np.float32) / 255.0) ** rng.uniform(*GAMMA) * rng.uniform(*GAIN)
    return np.clip(x * 255.0 + 0.5, 0, 255).astype(np.uint8)
