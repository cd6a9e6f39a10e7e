"""The training-free aligned baseline and the cache of aligned faces (CPU, seconds)."""
from __future__ import annotations

import csv
import json
import os

import cv2
import numpy as np
from sklearn.metrics import roc_auc_score

import genuine.train.faces as tf
from genuine.cli import main as cli
from genuine.infer.templates import load_templates
from genuine.train import baseline
from genuine.train.layout import discover


def test_faces_are_cached_and_recomputed_when_a_photo_changes(synth320, tmp_path, monkeypatch):
    monkeypatch.setenv("GENUINE_CACHE", str(tmp_path / "cache"))
    ds = discover(synth320)
    recs = [r for r in ds.records if r.product == ds.products[0]][:6]
    templates = load_templates(ds.root)
    calls = []
    real = tf.rectify
    monkeypatch.setattr(tf, "rectify", lambda *a, **k: calls.append(1) or real(*a, **k))
    first = tf.aligned_faces(ds.root, recs, templates, workers=1)[ds.products[0]]
    assert len(calls) == 6 and first.ok.sum() >= 5 and first.faces.dtype == np.uint8
    assert first.faces.shape[1:] == templates.templates[0].image.shape  # the template's own frame
    assert len(list((tmp_path / "cache" / "faces").glob("*.npz"))) == 1
    again = tf.aligned_faces(ds.root, recs, templates, workers=1)[ds.products[0]]
    assert len(calls) == 6, "a second call must read the cache, not rectify"
    assert np.array_equal(again.faces, first.faces) and np.array_equal(again.ok, first.ok)
    assert list(again.index) == list(first.index) and again.reasons == first.reasons
    st = os.stat(recs[2].path)
    os.utime(recs[2].path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # the photo changed
    tf.aligned_faces(ds.root, recs, templates, workers=1)
    assert len(calls) == 12


def _print(rng, h=96, w=160) -> np.ndarray:
    """A flat 'artwork' with print-like detail: bars, text-like strokes, a disc."""
    img = np.full((h, w, 3), 235, np.uint8)
    cv2.rectangle(img, (0, 0), (w, 22), (40, 110, 60), -1)
    cv2.putText(img, "GENUINE", (8, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (250, 250, 250), 1, cv2.LINE_AA)
    for k in range(4):
        cv2.putText(img, "lorem ipsum dolor 42", (6, 40 + 12 * k), cv2.FONT_HERSHEY_PLAIN, 0.8, (30, 30, 30), 1,
                    cv2.LINE_AA)
    for x in range(100, 150, 3):
        cv2.line(img, (x, 30), (x, 80), (20, 20, 20), 1 + (x // 3) % 2)
    cv2.circle(img, (130, 90), 5, (200, 60, 40), -1)
    return img


def _shoot(art, rng, blob=None) -> np.ndarray:
    """Genuine variation: sub-pixel offset, exposure and white balance, a little blur and noise."""
    h, w = art.shape[:2]
    m = np.float32([[1, 0, rng.normal(0, 0.3)], [0, 1, rng.normal(0, 0.3)]])
    a = art.copy()
    if blob is not None:  # the planted defect: a small mark in another colour
        cv2.circle(a, blob, 3, (60, 60, 200), -1)
    a = cv2.warpAffine(a.astype(np.float32), m, (w, h), borderMode=cv2.BORDER_REFLECT)
    a = cv2.GaussianBlur(a, (0, 0), rng.uniform(0.3, 0.9))
    a = a * rng.uniform(0.85, 1.1, 3) + rng.uniform(-10, 10) + rng.normal(0, 2, a.shape)
    return np.clip(a, 0, 255).astype(np.uint8)


def test_baseline_finds_a_planted_defect_not_genuine_variation():
    rng = np.random.default_rng(0)
    art = _print(rng)
    model = baseline.fit(np.stack([_shoot(art, rng) for _ in range(24)]))
    spots = [(int(rng.integers(10, 150)), int(rng.integers(28, 88))) for _ in range(12)]
    seeds = [int(rng.integers(0, 2**31)) for _ in spots]
    clean = np.stack([_shoot(art, np.random.default_rng(s)) for s in seeds])
    marked = np.stack([_shoot(art, np.random.default_rng(s), blob) for s, blob in zip(seeds, spots)])
    sc, sm = baseline.score(model, clean), baseline.score(model, marked)
    assert roc_auc_score([0] * len(sc) + [1] * len(sm), np.r_[sc, sm]) > 0.9
    assert np.all(sm > sc), "each marked photo must score above its own unmarked twin (same capture)"
    z = baseline.z_map(model, marked[0]).max(-1)
    y, x = np.unravel_index(np.argmax(cv2.GaussianBlur(z, (0, 0), 2)), z.shape)
    assert abs(x - spots[0][0]) <= 5 and abs(y - spots[0][1]) <= 5, "the strongest evidence is where the mark is"


def test_evaluate_aligned_end_to_end(synth320, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("GENUINE_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "ev"
    assert cli(["evaluate", "aligned", str(synth320), "--out", str(out), "--workers", "1"]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert "training-free aligned baseline" in printed[0] and printed[1].startswith("test: ")
    assert any(line.startswith("AUROC ") for line in printed) and "Results saved to" in printed[-1]
    report = json.loads((out / "report.json").read_text())
    test = [r for r in discover(synth320).records if r.split == "test"]
    assert report["metrics"]["n"] == len(test) and report["checkpoint"] == "aligned"
    assert 0 <= report["thresholds"]["threshold_genuine"] <= report["thresholds"]["threshold_suspect"] <= 1
    assert report["per_product"] and report["per_defect"] and "calibration" in report
    lo, hi = report["metrics"]["auroc_ci95_items"]
    assert lo <= report["metrics"]["auroc"] <= hi and report["metrics"]["items"] == len({r.item_id for r in test})
    assert any(" items: " in line for line in printed if line.startswith("AUROC "))
    assert report["alignment"]["aligned"] + len(report["not_aligned"]) == len(test)
    with open(out / "predictions.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == len(test) and {"path", "p_counterfeit", "verdict", "defect"} <= set(rows[0])
    failed = {a["path"] for a in report["not_aligned"]}
    assert all(r["verdict"] == "INCONCLUSIVE" and float(r["p_counterfeit"]) == 0.5 for r in rows if r["path"] in failed)


def test_the_auroc_interval_resamples_items_not_photos():
    from genuine.train.layout import Record
    from genuine.train.report_build import build_report

    rng = np.random.default_rng(0)
    # 8 items of 12 photos each: photos of one item share most of their score
    y = np.repeat([0, 1] * 4, 12)
    p = np.clip(np.repeat(rng.normal(0.5, 0.15, 8), 12) + 0.1 * y + rng.normal(0, 0.02, 96), 0, 1)
    recs = [Record(f"{i}.jpg", None, "a", "counterfeit" if y[i] else "genuine", item_id=f"item{i // 12}")
            for i in range(96)]
    alone = [Record(r.rel, None, "a", r.label, item_id=r.rel) for r in recs]   # every photo its own item
    m_items = build_report(recs, y, p, {"threshold_genuine": 0.3, "threshold_suspect": 0.7})[0]["metrics"]
    m_photos = build_report(alone, y, p, {"threshold_genuine": 0.3, "threshold_suspect": 0.7})[0]["metrics"]
    assert m_items["items"] == 8 and m_photos["items"] == 96
    width = lambda m: m["auroc_ci95_items"][1] - m["auroc_ci95_items"][0]   # noqa: E731
    assert width(m_items) > 2 * width(m_photos)
