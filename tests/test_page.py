"""The officer's page (issue 25): a built site inspects in headless Debian chromium as `genuine inspect` does.

A comparator trained on SynthPack (conftest's comparator_run), a reference store with both products' templates and
genuine train photos (the variation and each product's operating point), a site built from them, served on
localhost and driven by playwright. Skipped where chromium, playwright or web/vendor (`npm ci` in web/) is missing;
CI installs all three (.ci/run).
"""
from __future__ import annotations

import base64
import contextlib
import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from genuine.cli import main as cli
from tests.page_browser import browser, skip_unless_browser

VENDOR = Path(__file__).resolve().parents[1] / "web" / "vendor" / "versions.json"


def _skip_unless_ready():
    skip_unless_browser()
    if not VENDOR.is_file():
        pytest.skip("web/vendor is missing: run `npm ci` in web/ (CI does)")


@pytest.fixture(scope="module")
def site(comparator_run, tmp_path_factory):
    """(site folder, model, store, test photos): both products' templates and genuine train photos in the store."""
    _skip_unless_ready()
    run, ds, new = comparator_run
    tmp = tmp_path_factory.mktemp("page")
    db = str(tmp / "refs.db")
    assert cli(["data", "references", str(ds.root), "--db", db]) == 0
    out = tmp / "site"
    assert cli(["page", "build", str(run / "model.onnx"), "--templates", db, "--out", str(out)]) == 0
    photos = sorted(p for p in ds.root.glob("*/*/*.jpg"))
    return out, run / "model.onnx", db, photos


def _b64(path_or_bytes) -> str:
    data = path_or_bytes if isinstance(path_or_bytes, bytes) else Path(path_or_bytes).read_bytes()
    return base64.b64encode(data).decode()


INSPECT = ("async ([b, n, p]) => window.genuine.inspectBytes(Uint8Array.from(atob(b), c => c.charCodeAt(0)), n, "
           "p ?? null)")


def _corners_apart(a: dict, b: dict) -> float | None:
    """Where Python and the page put the package: the largest corner distance over the package's width, or None
    where either did not rectify."""
    ca, cb = (a.get("rectification") or {}).get("corners"), (b.get("rectification") or {}).get("corners")
    if not ca or not cb:
        return None
    ca, cb = np.array(ca), np.array(cb)
    return float(np.linalg.norm(ca - cb, axis=1).max() / np.linalg.norm(ca[1] - ca[0]))


def _inspect(page, data, name, product=None) -> dict:
    return page.evaluate(INSPECT, [_b64(data), name, product])


@contextlib.contextmanager
def opened(site_dir, query=""):
    """The built site served on localhost and opened in chromium, ready to inspect: yields the page."""
    from genuine.infer.page_serve import serve

    server, url = serve(site_dir)
    try:
        with browser() as b:
            page = b.new_page()
            page.goto(url + "index.html" + query)
            page.evaluate("() => window.genuine.ready.then(() => true)")
            yield page
    finally:
        server.shutdown()


def test_site_json_describes_the_model_and_its_products(site):
    out, model, _, _ = site
    meta = json.loads((out / "site.json").read_text())
    from genuine.infer.runtime import OnnxModel

    m = OnnxModel(model)
    assert meta["model"]["sha256"] == m.sha256 and meta["format"] == "genuine-page/1"
    assert (out / "model.onnx").read_bytes() == Path(model).read_bytes()
    assert {p["product"] for p in meta["products"]} == {t["product"] for t in meta["templates"]}
    for t in meta["templates"]:
        orb = (out / t["dir"] / "orb.bin").read_bytes()
        n = int(np.frombuffer(orb[:4], "<u4")[0])
        assert n == t["keypoints"] and len(orb) == 4 + 40 * n
        assert t["operating_point"]["plain"]["thresholds"]["threshold_suspect"] is not None
    files = json.loads((out / "files.json").read_text())
    assert "model.onnx" in files and "vendor/ort/ort-wasm-simd-threaded.wasm" in files
    assert "__VERSION__" not in (out / "sw.js").read_text()


@pytest.mark.slow
def test_the_page_inspects_as_python_does_then_offline(site):
    """Parity with `genuine inspect --json` on the same photos, the same answer twice, and then with the server
    stopped and the browser offline."""
    out, model, db, photos = site
    from genuine.infer.inspector import Inspector
    from genuine.infer.model_input import face_model_input
    from genuine.infer.page_serve import serve
    from genuine.infer.rectify import rectify_photo

    insp = Inspector(str(model), templates=db)
    sample = photos[::max(1, len(photos) // 24)][:24]
    py = [insp.inspect(str(p)).to_dict() for p in sample]
    server, url = serve(out)
    try:
        with browser() as b:
            ctx = b.new_context()
            page = ctx.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(url + "index.html")
            page.evaluate("() => window.genuine.ready.then(() => true)")
            got = [_inspect(page, p, str(p)) for p in sample]
            same = [a["verdict"] == g["verdict"] for a, g in zip(py, got)]
            mism = [(str(p), a["verdict"], a["reason"], g["verdict"], g["reason"]) for p, a, g, s in zip(sample, py, got, same) if not s]
            # the target: 97% of verdicts equal (both sides start the face from the same ORB fit and refine
            # it with the same ECC: infer/orb.py, web/site/ecc.js; with SIFT's start in Python it was 95% on 96
            # SynthPack photos), and the faces where both put them: corners apart by 0.1% of the width at the median
            assert sum(same) / len(same) >= 0.97, mism
            apart = [_corners_apart(a, g) for a, g in zip(py, got)]
            apart = [x for x in apart if x is not None]
            assert len(apart) >= len(sample) // 2 and float(np.median(apart)) < 1e-3, apart
            assert all(g["model_sha256"] == insp.model.sha256 for g in got)
            # the model's outputs on the same face: Python's rectified face through the page's onnxruntime-web
            for p in sample[:6]:
                r, _ = rectify_photo(str(p), insp.templates, insp.model.face_size)
                if not r.ok:
                    continue
                x, _ = face_model_input(r.face, r.density, insp.model.face_size)
                ref = insp.model.compare(x[None], insp.judge.template_input(r.template)[None])
                o = page.evaluate("async ([b, k]) => { const r = await window.genuine.compareFace(Uint8Array.from("
                                  "atob(b), c => c.charCodeAt(0)), k); return [r.p_counterfeit, Array.from(r.heatmap.data)]; }",
                                  [_b64(x.tobytes()), r.template.key])
                assert abs(o[0] - float(ref["p_counterfeit"][0])) < 1e-4
                assert np.max(np.abs(np.array(o[1]) - ref["heatmap"][0].ravel())) < 1e-4
            again = _inspect(page, sample[0], str(sample[0]))
            assert (again["verdict"], again["p_counterfeit"]) == (got[0]["verdict"], got[0]["p_counterfeit"])
            page.evaluate("() => navigator.serviceWorker.ready.then(() => true)")
            assert errors == []
            server.shutdown()
            ctx.set_offline(True)
            page.reload()
            page.evaluate("() => window.genuine.ready.then(() => true)")
            offline = _inspect(page, sample[0], str(sample[0]))
            assert (offline["verdict"], offline["p_counterfeit"]) == (got[0]["verdict"], got[0]["p_counterfeit"])
    finally:
        server.shutdown()


@pytest.mark.slow
def test_bad_input_gets_a_clear_message_and_the_page_goes_on(site):
    out, _, _, photos = site
    with opened(out) as page:
        text = _inspect(page, b"this is not a photo", "notes.txt")
        assert text["verdict"] == "ERROR" and "notes.txt" in text["reason"] and text["kind"] == "unsupported"
        # a PNG whose header claims 40000 x 40000: refused before any decoding
        png = io.BytesIO()
        Image.new("RGB", (8, 8)).save(png, "PNG")
        huge = bytearray(png.getvalue())
        huge[16:24] = (40000).to_bytes(4, "big") + (40000).to_bytes(4, "big")
        big = _inspect(page, bytes(huge), "huge.png")
        assert big["verdict"] == "ERROR" and big["kind"] == "too_large" and "1600 MP" in big["reason"]
        # a photo of no known product, and a blurred one
        noise = io.BytesIO()
        Image.fromarray(np.random.default_rng(0).integers(0, 255, (320, 320, 3), np.uint8)).save(noise, "JPEG")
        other = _inspect(page, noise.getvalue(), "other.jpg")
        assert other["verdict"] == "INCONCLUSIVE" and other["rectification"]["reason_code"] in ("not_covered", "no_package")
        from PIL import ImageFilter

        blurred = io.BytesIO()
        Image.open(photos[0]).filter(ImageFilter.GaussianBlur(6)).save(blurred, "JPEG")
        soft = _inspect(page, blurred.getvalue(), "blurred.jpg")
        assert soft["verdict"] == "INCONCLUSIVE"
        # and the page still inspects afterwards
        ok = _inspect(page, photos[0], str(photos[0]))
        assert ok["verdict"] in ("GENUINE", "SUSPECT", "INCONCLUSIVE") and ok.get("model_sha256")


# The main thread's longest stall while one photo is inspected: a timer that re-arms itself at once measures it.
STALL = """async ([b, n]) => {
  const bytes = Uint8Array.from(atob(b), c => c.charCodeAt(0));
  let last = performance.now(), worst = 0, run = true;
  const tick = () => { const now = performance.now(); worst = Math.max(worst, now - last); last = now; if (run) setTimeout(tick, 0); };
  setTimeout(tick, 0);
  const r = await window.genuine.inspectBytes(bytes, n, null);
  run = false;
  return { worst, verdict: r.verdict, worker: (await window.genuine.ready).worker };
}"""


@pytest.mark.slow
def test_the_page_keeps_answering_while_it_inspects(site):
    """The inspector runs in a Web Worker: while a 12 MP photo is inspected, the page's main thread stalls for far
    less than with the same pipeline on it (?worker=0), and both give the same verdict."""
    out, _, _, photos = site
    img = Image.open(photos[0])
    k = 4032 / max(img.size)
    big = io.BytesIO()
    img.resize((round(img.size[0] * k), round(img.size[1] * k))).save(big, "JPEG", quality=92)
    got = {}
    for query in ("?sw=0", "?sw=0&worker=0"):
        with opened(out, query) as page:
            page.evaluate(STALL, [_b64(big.getvalue()), "big.jpg"])   # the first inspection loads what it lazily needs
            got[query] = page.evaluate(STALL, [_b64(big.getvalue()), "big.jpg"])
    worker, thread = got["?sw=0"], got["?sw=0&worker=0"]
    assert worker["worker"] and not thread["worker"] and worker["verdict"] == thread["verdict"]
    assert worker["worst"] < 0.5 * thread["worst"], got


GROCERY = Path(__file__).resolve().parents[2] / "shared" / "data" / "grocery-packages"
REAL = ("Alpro-Blueberry-Soyghurt", "Garant-Ecological-Standard-Milk", "Oatly-Natural-Oatghurt")
# Look-alikes sharing the Alpro logo: with Python's margin (1.5) the page's ORB named these cups as Alpro cartons
LOOKALIKES = ("Alpro-Fresh-Soy-Milk", "Alpro-Shelf-Soy-Milk", "Alpro-Vanilla-Soyghurt")
# Where the store's identification views name what the catalogue images alone do not (grocery val, BENCHMARKS.md)
JUICES = ("God-Morgon-Orange-Juice", "God-Morgon-Orange-Red-Grapefruit-Juice")
CUPS = ("Soyghurt/Alpro-Blueberry-Soyghurt/Alpro-Blueberry-Soyghurt_004.jpg",
        "Soyghurt/Alpro-Blueberry-Soyghurt/Alpro-Blueberry-Soyghurt_005.jpg",
        "Soyghurt/Alpro-Vanilla-Soyghurt/Alpro-Vanilla-Soyghurt_002.jpg",
        "Soyghurt/Alpro-Vanilla-Soyghurt/Alpro-Vanilla-Soyghurt_003.jpg")


@pytest.mark.slow
@pytest.mark.skipif(not (GROCERY / "iconic").is_dir(), reason="../shared/data/grocery-packages is not here")
def test_real_shop_photos_get_pythons_verdicts_on_the_page(site, tmp_path):
    """Real photos: three grocery products, their catalogue images as templates and genuine shop photos as their
    variation; val photos inspected with the product declared give Python's verdict but for one (the page fits the
    face from ORB; on curved packages Python keeps SIFT's fit, which ORB's disagrees with: BENCHMARKS.md, session 15); undeclared, the page never names a wrong product, also
    beside look-alikes of the same brand (page_build.ORB_MARGIN) and with the store's identification views; a shop
    photo added as a view is recognised at once."""
    _, model, _, _ = site
    from genuine.infer.inspector import Inspector
    from genuine.infer.references import ReferenceDB
    from genuine.infer.template_photos import views_from_photos
    from genuine.infer.templates import template_from_file
    from genuine.infer.variation_store import add_genuine_photos

    db = tmp_path / "grocery.db"
    store = ReferenceDB(db, create=True)
    photos, faces = [], {}
    for p in REAL + LOOKALIKES + JUICES:
        faces[p] = t = template_from_file(GROCERY / "iconic" / f"{p}.jpg", p)
        store.add_template(p, t, t.source, "artwork")
    for p in REAL:
        train = sorted(GROCERY.glob(f"photos/train/*/{p}/*.jpg"))
        add_genuine_photos(store.conn, p, [str(f) for f in train[::max(1, len(train) // 10)][:10]])
        photos += sorted(GROCERY.glob(f"photos/val/*/{p}/*.jpg"))[:3]
    for p in REAL + LOOKALIKES + JUICES:
        # shop photos that name the product (identification only), for look-alikes too: views of one cup alone
        # name its sibling's photos as it, in Python as on the page (BENCHMARKS.md, session 14)
        train = sorted(GROCERY.glob(f"photos/train/*/{p}/*.jpg"))
        for v in views_from_photos(p, train[1::max(1, len(train) // 10)][:10], [faces[p]])[0]:
            store.add_template(p, v, v.source, "view")
    store.conn.close()
    out = tmp_path / "site"
    assert cli(["page", "build", str(model), "--templates", str(db), "--out", str(out)]) == 0
    insp = Inspector(str(model), templates=str(db))
    declared = [insp.inspect(str(f), product=f.parent.name).to_dict() for f in photos]
    with opened(out) as page:
        got = [_inspect(page, f, str(f), f.parent.name) for f in photos]
        same = [a["verdict"] == g["verdict"] for a, g in zip(declared, got)]
        assert sum(same) >= len(same) - 1, [(str(f), a["verdict"], a["reason"], g["verdict"], g["reason"])
                                            for f, a, g in zip(photos, declared, got)]
        assert sum((g.get("rectification") or {}).get("ok", False) for g in got) >= len(got) // 2
        undeclared = [f for p in REAL + JUICES for f in sorted(GROCERY.glob(f"photos/val/*/{p}/*.jpg"))]
        named = {f: (_inspect(page, f, str(f)).get("rectification") or {}).get("product")
                 for f in undeclared + [GROCERY / "photos" / "val" / c for c in CUPS]}
        assert all(n in (None, f.parent.name) for f, n in named.items()), {f.name: n for f, n in named.items() if n not in (None, f.parent.name)}
        assert sum(n is not None for n in named.values()) >= 3, named
    # a shop photo a brand trainer added as an identification view is recognised on the page at once; without the
    # views (--view-keypoints 0) the catalogue images alone do not name them all
    added = [sorted(GROCERY.glob(f"photos/train/*/{p}/*.jpg"))[1] for p in REAL + LOOKALIKES + JUICES]
    with opened(out) as page:
        viewed = {f: (_inspect(page, f, str(f)).get("rectification") or {}).get("identified") for f in added}
    bare = tmp_path / "site-no-views"
    assert cli(["page", "build", str(model), "--templates", str(db), "--out", str(bare), "--view-keypoints", "0"]) == 0
    with opened(bare) as page:
        unviewed = {f: (_inspect(page, f, str(f)).get("rectification") or {}).get("identified") for f in added}
    assert all(n == f.parent.name for f, n in viewed.items()), {f.name: n for f, n in viewed.items()}
    assert sum(n == f.parent.name for f, n in unviewed.items()) < len(added), unviewed
