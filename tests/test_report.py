"""infer.report.write_html: one self-contained offline page, every row present, hostile names inert."""
from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from genuine.infer import report
from genuine.infer.report import write_html

EVIL = "</script><script>alert(1)</script>"
DATA_RE = re.compile(r'<script type="application/json" id="rows">(.*?)</script>', re.S)


def _thumb(run_dir, name, colour):
    (run_dir / "thumbs").mkdir(exist_ok=True)
    Image.new("RGB", (24, 16), colour).save(run_dir / "thumbs" / name, "JPEG")
    return f"thumbs/{name}"


def _row(path, verdict, p=None, thumb=None, **kw):
    paths = path if isinstance(path, list) else [path]
    base = dict(paths=paths, sha256="ab" * 32, verdict=verdict, authenticity=None if p is None else 1 - p,
                p_counterfeit=p, product="bag_a", product_confidence=0.97, reason=f"p_counterfeit {p}",
                quality={"issues": []}, error_kind=None, thumb=thumb)
    base.update(kw)
    return base


def _summary(**kw):
    s = dict(total_photos=6, counts={"GENUINE": 2, "SUSPECT": 2, "INCONCLUSIVE": 1, "ERROR": 1},
             errors={"truncated": 1}, model_sha256="cafe" * 16, elapsed_s=12.5, photos_per_s=48.0,
             sources=["/archive/seizure_0412"], duplicates=2,
             per_product={"bag_a": {"GENUINE": 2, "SUSPECT": 2}, "watch_b": {"INCONCLUSIVE": 1}},
             finished="2025-01-01T12:00:00+00:00", thresholds={"threshold_genuine": 0.2, "threshold_suspect": 0.8})
    s.update(kw)
    return s


@pytest.fixture
def run(tmp_path):
    rows = [
        _row("/a/genuine1.jpg", "GENUINE", 0.03),
        _row(["/a/dup.jpg", "/b/dup copy.jpg", "/c/dup (2).jpg"], "GENUINE", 0.1,
             quality={"issues": ["blurry", "dark"]}),
        _row("/a/fake_mild.jpg", "SUSPECT", 0.85, thumb=_thumb(tmp_path, "mild.jpg", "red")),
        _row("/a/fake_sure.jpg", "SUSPECT", 0.99, thumb=_thumb(tmp_path, "sure.jpg", "blue")),
        _row("/a/unsure.jpg", "INCONCLUSIVE", 0.5, product="watch_b", thumb=_thumb(tmp_path, "unsure.jpg", "green")),
        dict(paths=["/a/broken.jpg"], sha256=None, verdict="ERROR", authenticity=None, p_counterfeit=None,
             product=None, product_confidence=None, reason="truncated JPEG", error_kind="truncated", thumb=None),
    ]
    return tmp_path, rows


def _write(tmp_path, rows, summary=None, **kw):
    out = tmp_path / "report.html"
    write_html(out, rows, _summary() if summary is None else summary, tmp_path, **kw)
    text = out.read_text("utf-8")
    return text, json.loads(DATA_RE.search(text).group(1))


def test_every_row_is_in_the_embedded_json(run):
    tmp_path, rows = run
    _, data = _write(tmp_path, rows)
    assert sorted((r["p"], r["v"]) for r in data) == sorted((r["paths"], r["verdict"]) for r in rows)
    dup = next(r for r in data if len(r["p"]) == 3)
    assert dup["q"] == ["blurry", "dark"]
    err = next(r for r in data if r["v"] == "ERROR")
    assert err["e"] == "truncated" and err["a"] is None and err["h"] is None and err["q"] == []
    # default order is the officer's work order: most suspicious first, GENUINE last
    assert [r["p"][0] for r in data[:3]] == ["/a/fake_sure.jpg", "/a/fake_mild.jpg", "/a/unsure.jpg"]
    assert data[-1]["v"] == "GENUINE"


def test_page_is_self_contained(run):
    tmp_path, rows = run
    text, _ = _write(tmp_path, rows)
    low = text.lower()
    for bad in ("http://", "https://", "<script src", "<link", "@import", "url(", "innerhtml"):
        assert bad not in low, bad
    assert "<title>genuine scan report</title>" in text
    assert 'src="//' not in low and "src='//" not in low


def test_summary_header(run):
    tmp_path, rows = run
    text, _ = _write(tmp_path, rows)
    for s in ("cafe" * 16, "/archive/seizure_0412", "truncated: 1", "watch_b", "2025-01-01T12:00:00+00:00",
              "48.0 photos/s", "3 embedded", "Per product"):
        assert s in text, s
    assert 'class="warning"' not in text
    text, _ = _write(tmp_path, rows, summary=_summary(model_warning="weak model: validation AUROC 0.512 <b>"))
    assert '<p class="warning">weak model: validation AUROC 0.512 &lt;b&gt;</p>' in text
    # a bare summary must not crash
    text, data = _write(tmp_path, rows, summary={})
    assert len(data) == len(rows) and "genuine scan report" in text


def test_thumbnails_embedded_then_linked(run):
    tmp_path, rows = run
    text, data = _write(tmp_path, rows, embed_limit=1)
    by = {r["p"][0]: r for r in data}
    sure = by["/a/fake_sure.jpg"]["t"]   # the most suspicious one gets the only embed slot
    assert sure.startswith("data:image/jpeg;base64,")
    assert base64.b64decode(sure.split(",", 1)[1]) == (tmp_path / "thumbs" / "sure.jpg").read_bytes()
    assert by["/a/fake_mild.jpg"]["t"] == "thumbs/mild.jpg"
    assert by["/a/unsure.jpg"]["t"] == "thumbs/unsure.jpg"
    assert by["/a/genuine1.jpg"]["t"] is None
    assert "1 embedded" in text and "2 linked" in text
    _, data = _write(tmp_path, rows)   # default limit: all three flagged thumbnails inline
    assert sum(1 for r in data if (r["t"] or "").startswith("data:image/jpeg;base64,")) == 3


def test_hostile_paths_stay_data(tmp_path):
    names = [f"/x/{EVIL}.jpg", "/x/<!--<script>.jpg", "/x/a&b\"'<b>.jpg", "/x/\u2028line.jpg",
             "/x/@@HEADER@@.jpg", "/x/caf\udce9.jpg"]   # the last: an undecodable byte, as os.fsdecode gives it
    rows = [_row(n, "SUSPECT", 0.9, product=EVIL, reason=EVIL, thumb="../x/javascript:alert(1).jpg") for n in names]
    text, data = _write(tmp_path, rows, summary=_summary(sources=[EVIL], per_product={EVIL: {"SUSPECT": 1}}))
    assert text.count("<script") == report._TEMPLATE.count("<script") == 2
    assert text.lower().count("</script") == 2
    assert "alert(1)</script>" not in text and "<!--" not in text
    assert sorted(r["p"][0] for r in data) == sorted(names)   # JSON \u escapes carry even lone surrogates back
    assert all(r["pr"] == EVIL and ":" not in r["t"] for r in data)   # no scheme can sneak into img src


def test_csp_hash_matches_script(run):
    tmp_path, rows = run
    text, _ = _write(tmp_path, rows)
    script = re.search(r"<script>(.*?)</script>", text, re.S).group(1)
    digest = base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode("ascii")
    assert f"script-src 'sha256-{digest}'" in text
    assert not re.search(r"<[^>]+\son[a-z]+=", text)   # inline handlers would be blocked by the CSP


def test_svg_histogram(run):
    tmp_path, rows = run
    text, _ = _write(tmp_path, rows)
    svg = re.search(r"<svg.*?</svg>", text, re.S).group(0)
    assert "authenticity (probability genuine)" in svg and ">photos<" in svg
    for v in ("GENUINE", "SUSPECT", "INCONCLUSIVE"):
        assert f">{v} (" in svg   # legend
    assert svg.count("<rect") >= 5 + 3   # bars + legend swatches
    assert "stroke-dasharray" in svg    # threshold lines from summary["thresholds"]


def _dashed(svg_or_page: str) -> list[str]:
    """The threshold lines' x positions, in drawing order."""
    svg = re.search(r"<svg.*?</svg>", svg_or_page, re.S).group(0)
    return re.findall(r'<line x1="([0-9.]+)"[^>]*stroke-dasharray', svg)


def _decided(th_g, th_s, source):
    return {"thresholds": {"source": source, "threshold_genuine": th_g, "threshold_suspect": th_s}}


def test_histogram_draws_the_thresholds_the_records_were_decided_by(run):
    """A fused comparator decides by meta["fusion"]["thresholds"], not the model's (summary["thresholds"]): the
    lines must be where the verdicts changed."""
    tmp_path, rows = run
    fused = [{**r, "evidence": _decided(0.3, 0.6, "fusion")} for r in rows]
    text, _ = _write(tmp_path, fused)
    assert _dashed(text) == _dashed(report._histogram_svg(fused, {"threshold_genuine": 0.3, "threshold_suspect": 0.6}))
    assert _dashed(text) != _dashed(report._histogram_svg(fused, _summary()["thresholds"]))
    assert "the thresholds every photo was decided by (from the model&#x27;s fusion with genuine photos)" in text


def test_histogram_with_per_product_thresholds_says_so(run):
    tmp_path, rows = run
    scored = [r for r in rows if r["verdict"] != "ERROR"]
    mixed = [{**r, "evidence": _decided(0.1, 0.9, "product") if k else _decided(0.3, 0.6, "model")}
             for k, r in enumerate(scored)] + [r for r in rows if r["verdict"] == "ERROR"]
    text, _ = _write(tmp_path, mixed)
    assert _dashed(text) == _dashed(report._histogram_svg(mixed, {"threshold_genuine": 0.1, "threshold_suspect": 0.9}))
    assert ("per-product thresholds apply: the dashed lines are the pair that decided 4 of 5 scored photos (from "
            "a product&#x27;s own genuine photos)") in text
    drawn, caption = report.histogram_thresholds(rows, _summary()["thresholds"])   # no record names its pair
    assert drawn == _summary()["thresholds"] and caption == "dashed lines: the model's thresholds"


def test_atomic_write_leaves_no_temp(run, monkeypatch):
    tmp_path, rows = run
    _write(tmp_path, rows)
    _write(tmp_path, rows)   # overwrite in place
    assert sorted(os.listdir(tmp_path)) == ["report.html", "thumbs"]
    before = (tmp_path / "report.html").read_bytes()

    def boom(*a):
        raise OSError("disk full")
    monkeypatch.setattr(report.os, "replace", boom)
    with pytest.raises(OSError):
        _write(tmp_path, rows)
    assert sorted(os.listdir(tmp_path)) == ["report.html", "thumbs"]
    assert (tmp_path / "report.html").read_bytes() == before


def test_odd_values_do_not_break_the_json(tmp_path):
    rows = [_row("/n/nan.jpg", "INCONCLUSIVE", float("nan"), product_confidence=np.float32(0.5)),
            _row("/n/np.jpg", "GENUINE", np.float64(0.01), quality=None, thumb="thumbs/missing.jpg"),
            dict(paths=["/n/bare.jpg"], verdict="ERROR", reason="empty", error_kind="empty"),
            _row(Path("/n/pathlib.jpg"), "SUSPECT", 0.9, thumb=Path(_thumb(tmp_path, "p.jpg", "red")))]
    text, data = _write(tmp_path, rows, summary=_summary(counts=None, errors=None, elapsed_s=None))
    by = {r["p"][0]: r for r in data}
    assert by["/n/nan.jpg"]["a"] is None and by["/n/nan.jpg"]["c"] == 0.5
    assert by["/n/np.jpg"]["t"] == "thumbs/missing.jpg"   # missing file: linked, not fatal
    assert by["/n/pathlib.jpg"]["t"].startswith("data:image/jpeg;base64,")   # Path objects work too
    assert "1 embedded" in text and "1 linked" in text
    _, empty = _write(tmp_path, [])
    assert empty == []


@pytest.mark.skipif(shutil.which("node") is None, reason="node not installed")
def test_script_is_valid_js(tmp_path):
    """The script as the page carries it (verdict names filled in), and the CSP hash pins exactly that script."""
    import base64
    import hashlib
    import re

    text, _ = _write(tmp_path, [])
    script = re.search(r"<script>(.*?)</script>", text, re.S).group(1)
    assert "@@" not in text and '"SUSPECT": 0' in script
    assert all(f'class="vf" value="{v}"' in text for v in ("GENUINE", "SUSPECT", "INCONCLUSIVE", "ERROR"))
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    assert f"'sha256-{digest}'" in text
    js = tmp_path / "page.js"
    js.write_text(script)
    subprocess.run(["node", "--check", str(js)], check=True, capture_output=True, timeout=30)


def test_the_heatmap_tints_where_the_model_looked_and_leaves_the_rest_as_photographed():
    """A hot spot of a few cells reads as a region on the face; below the map's median the package is untouched
    (a uniform cast would hide the spot an officer must examine)."""
    import numpy as np

    from genuine.infer.heatmap import overlay_face

    rng = np.random.default_rng(0)
    face = np.full((104, 160, 3), 128, np.uint8)             # mid grey: every change is the tint
    heat = rng.normal(0, 0.05, (26, 40)).astype(np.float32)
    heat[20:22, 30:32] += 3.0                                 # the difference, lower right
    out = np.asarray(overlay_face(face, heat)).astype(int)
    change = np.abs(out - face.astype(int)).sum(-1)
    spot = change[84:88, 124:128]                             # cells 20-21, 30-31 at stride 4
    assert spot.mean() > 10 * max(np.median(change), 1)       # the spot stands out from the rest of the package
    assert (change == 0).mean() > 0.25                       # below the map's median: as photographed
