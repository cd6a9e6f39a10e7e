"""Product identification on real-style photos: tight crops, several units, views of another edition, look-alikes that
share a logo; and the real grocery photos when ../shared is present."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from genuine.infer.keypoints import Template, TemplateSet
from genuine.infer.rectify import rectify
from genuine.infer.template_photos import views_from_photos

from test_rectify import artwork, clutter, photograph

GROCERY = Path(__file__).resolve().parents[2] / "shared" / "data" / "grocery-packages"


@pytest.fixture(scope="module")
def templates():
    return TemplateSet([Template.from_image(f"p{p}", artwork(p), f"p{p}.png") for p in range(3)])


def test_a_tight_crop_of_a_flat_item_is_inspected_not_cut(templates):
    """The package fills the frame and its edges run past the photo's border (a banknote, a label): a normal photo.
    What lies outside the photo is taken from the template, so it shows no difference."""
    tpl = templates.templates[0].image
    th, tw = tpl.shape[:2]
    corners = np.array([[-40, -25], [tw * 1.25 - 40, -25], [tw * 1.25 - 40, th * 1.25 - 25], [-40, th * 1.25 - 25]])
    photo, _ = photograph(tpl, corners, int(tw * 1.1), int(th * 1.1))
    r = rectify(photo, templates, face_side=None)
    assert r.ok, r.reason
    assert r.product == "p0" and 0.6 <= r.visible < 0.95
    assert np.abs(r.face[:10, :10].astype(float) - tpl[:10, :10]).mean() < 1   # outside: the template's own pixels


def test_two_units_side_by_side_name_their_product(templates):
    tpl = templates.templates[2].image
    th, tw = tpl.shape[:2]
    photo = clutter(2 * tw + 60, th + 60, seed=4)
    for x in (20, tw + 40):
        photo[30:30 + th, x:x + tw] = tpl
    r = rectify(photo, templates)
    assert r.ok and r.product == "p2" and r.identified == "p2"


def test_views_of_another_edition_identify_the_product():
    """A product whose only face template is of another edition (its lower half redesigned) is still named from
    photos of the current edition stored as views; the views' background keypoints are dropped."""
    old = artwork(1).copy()
    h = old.shape[0]
    new = old.copy()
    new[h // 2:] = artwork(4)[h // 2:h]                          # the new edition: another lower half
    shots = [photograph(new, np.array([[60 + 9 * k, 40], [430, 50 + 5 * k], [420, 300], [50, 290 - 4 * k]], float),
                        500, 360, seed=10 + k)[0] for k in range(4)]
    views, refused = views_from_photos("p1", shots, [Template.from_image("p1", old)])
    assert len(views) == 4 and not refused
    full = Template.from_image("p1", shots[0])
    assert len(views[0].keypoints) < 0.8 * len(full.keypoints)  # the clutter's keypoints are gone
    others = [Template.from_image(f"p{p}", artwork(p)) for p in (0, 2, 3)]
    query, _ = photograph(new, np.array([[80, 60], [450, 70], [440, 320], [70, 300]], float), 520, 390, seed=99)
    with_views = rectify(query, TemplateSet(others + [Template.from_image("p1", old)] + views))
    assert with_views.identified == "p1"
    assert with_views.evidence > rectify(query, TemplateSet(others + [Template.from_image("p1", old)])).evidence


def test_a_shared_logo_is_no_evidence_for_either_look_alike(templates):
    """Two products share their top half (one brand's logo and wordmark): keypoints there vote for neither, so a
    photo of a third product with that same top half names neither of them."""
    a, b = artwork(0), artwork(1).copy()
    top = a.shape[0] // 2
    b[:top] = a[:top]
    third = a.copy()
    third[top:] = 235
    rng = np.random.default_rng(7)                           # its own lower half: other shapes, other colours
    for _ in range(60):
        x, y = int(rng.integers(0, a.shape[1])), int(rng.integers(top, a.shape[0]))
        cv2.rectangle(third, (x, y), (x + int(rng.integers(5, 40)), min(a.shape[0] - 1, y + int(rng.integers(5, 30)))),
                      tuple(int(c) for c in rng.integers(0, 256, 3)), -1)
    ts = TemplateSet([Template.from_image("a", a), Template.from_image("b", b)])
    photo, _ = photograph(third, np.array([[40, 40], [440, 50], [430, 300], [45, 290]], float), 480, 360)
    r = rectify(photo, ts)
    assert not r.ok and r.identified is None
    assert r.evidence < 20


@pytest.mark.skipif(not GROCERY.exists(), reason="../shared/data/grocery-packages is not here")
def test_real_grocery_photos_are_named_right_or_refused():
    """A few real shop photos against the 31 catalogue images plus views of each product: never a wrong product."""
    cv2.setNumThreads(1)
    from genuine.infer.photo import load_photo
    from genuine.infer.templates import template_from_file

    products = ["Oatly-Natural-Oatghurt", "Garant-Ecological-Standard-Milk", "God-Morgon-Orange-Juice"]
    ts = [template_from_file(f, f.stem) for f in sorted((GROCERY / "iconic").glob("*.jpg"))]
    for p in products:
        train = sorted(GROCERY.glob(f"photos/train/*/{p}/*.jpg"))
        faces = [t for t in ts if t.product == p]
        ts += views_from_photos(p, train[::max(1, len(train) // 6)][:6], faces)[0]
    ts = TemplateSet(ts)
    right = 0
    for p in products:
        for f in sorted(GROCERY.glob(f"photos/val/*/{p}/*.jpg"))[:3]:
            r = rectify(load_photo(f), ts, with_face=False)
            assert r.identified in (None, p), (f, r.identified)
            right += r.identified == p
    assert right >= 5


def test_views_are_stored_listed_exported_imported_and_removed_with_their_product(tmp_path):
    """Views live in the store beside the templates: loaded as views (identification only), carried by export and
    import, and removed with their product (a removed product must not be named from its views any more)."""
    from genuine.infer.references import ReferenceDB

    tpl = artwork(1)
    shots = [photograph(tpl, np.array([[60 + 9 * k, 40], [430, 50 + 5 * k], [420, 300], [50, 290 - 4 * k]], float),
                        500, 360, seed=20 + k)[0] for k in range(3)]
    db = ReferenceDB(tmp_path / "refs.db", create=True)
    face = db.add_template("p1", tpl, "p1.png")["template"]
    views, _ = views_from_photos("p1", shots, [face])
    for v in views:
        db.add_template("p1", v, v.source, "view")
    loaded = db.templates("p1")
    assert sum(t.view for t in loaded) == len(views) == 3 and sum(not t.view for t in loaded) == 1
    db.export(tmp_path / "share.db", product="p1")
    other = ReferenceDB(tmp_path / "other.db", create=True)
    assert other.import_from(tmp_path / "share.db")["templates"] == 4   # the face and its 3 views
    assert sum(t.view for t in other.templates("p1")) == 3
    db.remove(product="p1")
    assert db.templates("p1") == []


def test_a_refusal_with_some_evidence_names_the_closest_product_and_both_ways_out():
    """A photo with a few distinctive keypoints of a stored product is not told flatly that its product has no
    template: the reason names the closest one, the evidence against what is needed, and what to do either way."""
    from genuine.infer.rectify import LIMITS, unrecognised

    why = unrecognised([("acme-tea", 9), ("acme-coffee", 2)], LIMITS)
    assert "closest template is acme-tea (9 distinctive keypoints, runner-up 2; 20 and 1.5x needed)" in why
    assert "genuine inspect --product acme-tea" in why and "genuine references add --template" in why
    assert "runner-up 0" in unrecognised([("acme-tea", 5)], LIMITS)
