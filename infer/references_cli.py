"""`genuine references ...`: manage a reference gallery, torch-free (`calibrate` fits on the train side: train.fusion).

    genuine references add model.onnx --db refs.db --product acme-tea refs/acme-tea/ --note "factory samples"
    genuine references add --db refs.db --product acme-tea --template artwork/acme-tea-front.png   # no model
    genuine references add --db refs.db --product acme-tea --template-from-photos refs/acme-tea/   # median
    genuine references add --db refs.db --product acme-tea --genuine-photos refs/acme-tea/   # genuine variation
    genuine references list --db refs.db
    genuine references remove --db refs.db --product acme-tea [--label counterfeit]
    genuine references export --db refs.db acme.db [--product acme-tea]
    genuine references import --db refs.db acme.db
    genuine references reembed new-model.onnx --db refs.db
"""
from __future__ import annotations

import sys

from genuine.infer.contract import weak_model_warning
from genuine.infer.photo import printable
from genuine.infer.references import ReferenceDB, ReferenceError


def _inspector(model):
    from genuine.infer.inspector import Inspector
    from genuine.infer.runtime import OnnxModel

    if OnnxModel(model).is_comparator:   # its references are templates: nothing to embed
        raise ReferenceError(f"{model} is a comparator: it compares photos with templates, it keeps no reference "
                             f"embeddings. Add a product with: genuine references add --db DB --product NAME "
                             f"--template IMAGE (or --template-from-photos PHOTOS)")
    insp = Inspector(model)
    if warning := weak_model_warning(insp.meta):   # references of a weak model inherit its weakness
        print(f"WARNING: {warning}", file=sys.stderr)
    return insp


def main(args) -> int:
    from genuine.infer.rectify import RectifyError

    try:
        return ACTIONS[args.ref_command](args)
    except (ReferenceError, RectifyError) as e:
        print(f"genuine references: {e}", file=sys.stderr)
        return 2


def _add(args) -> int:
    templates, from_photos = args.template, args.template_from_photos
    genuine, views = args.genuine_photos, args.views
    if not args.model and not (templates or from_photos or genuine or views):
        raise ReferenceError("nothing to add: give MODEL PHOTO... (reference photos), --template IMAGE (artwork or a "
                             "catalogue image), --template-from-photos PHOTO... or --genuine-photos PHOTO... "
                             "(photos of genuine units)")
    if args.label != "genuine" and (templates or from_photos or genuine or views):
        raise ReferenceError("a template is a genuine face: --label applies to reference photos only")
    if args.model and not args.photos:
        hint = "; templates are given with --template IMAGE" if not args.model.endswith(".onnx") else ""
        raise ReferenceError(f"reference photos need MODEL PHOTO...: no photos after {args.model}{hint}")
    # Every template is built before anything is stored: one refused (too few keypoints) stores nothing.
    from genuine.infer.templates import template_from_file

    built = [(template_from_file(image, args.product), "artwork", "") for image in templates]
    if from_photos:
        built.append(_from_photos(args.product, from_photos))
    db = ReferenceDB(args.db, create=True)
    if views:
        built += _views(args.product, views, [t for t, _, _ in built] + db.templates(args.product))
    for t, kind, how in built:
        r = db.add_template(args.product, t, t.source, kind, args.note or "")
        what = f"{kind} {t.size[0]}x{t.size[1]}, {len(t.keypoints)} keypoints{how}"
        state = "added" if r["added"] else f"already present as a template of {r['existing']}"
        print(f"{args.product}: template {state} ({what}); {db.template_count(args.product)} template(s) of "
              f"{args.product} in {printable(args.db)}")
    status = _genuine_photos(db, args) if genuine else 0
    if not args.model:
        return status
    r = db.add(_inspector(args.model), args.product, args.photos, label=args.label, note=args.note or "")
    for line in r["quality"]:
        print(f"warning: {line}", file=sys.stderr)
    for line in r["errors"]:
        print(f"skipped: {line}", file=sys.stderr)
    print(f"{args.product} ({args.label}): {r['added']} added, {len(r['duplicates'])} already present, "
          f"{len(r['errors'])} unreadable; {db.count()} references in {printable(args.db)}")
    return 0 if not r["errors"] else 3


def _genuine_photos(db, args) -> int:
    """--genuine-photos: aligned to the product's templates and kept (infer/variation_store.py)."""
    from genuine.infer.variation_store import add_genuine_photos

    try:
        r = add_genuine_photos(db.conn, args.product, args.genuine_photos)
    except ValueError as e:
        raise ReferenceError(str(e)) from None
    for line in r["errors"]:
        print(f"skipped: {line}", file=sys.stderr)
    state = ("its genuine variation is used by comparator models from the next inspection" if r["photos"] >= r["needed"]
             else f"{r['needed'] - r['photos']} more needed before its genuine variation is used")
    print(f"{args.product}: {r['added']} genuine photo(s) added, {len(r['duplicates'])} already present, "
          f"{len(r['errors'])} skipped; {r['photos']} in {printable(args.db)}: {state}")
    return 0 if not r["errors"] else 3


def _from_photos(product: str, sources: list[str]):
    """(Template, "photos", how) from photos of genuine units; photos left out are listed on stderr."""
    from genuine.infer.sources import photo_bytes
    from genuine.infer.template_photos import template_from_photos

    errors: list[str] = []
    pairs = [(e.key, d) for e, d in photo_bytes(sources, errors)]
    keys, data = [k for k, _ in pairs], [d for _, d in pairs]
    for line in errors:
        print(f"skipped: {line}", file=sys.stderr)
    if not data:
        raise ReferenceError(f"--template-from-photos: no photos in {', '.join(sources)}")
    more = f" and {len(sources) - 1} more" if len(sources) > 1 else ""
    t, refused = template_from_photos(product, data, source=f"median of photos: {sources[0]}{more}")
    for i, why in refused:
        print(f"skipped: {keys[i]}: {why}" if i >= 0 else f"warning: {why}", file=sys.stderr)
    used = len(data) - sum(i >= 0 for i, _ in refused)
    return t, "photos", f", median of {used} of {len(data)} photos"


def _views(product: str, sources: list[str], faces: list) -> list:
    """[(Template, "view", how)] from photos of the product; photos left out are listed on stderr."""
    from genuine.infer.sources import photo_bytes
    from genuine.infer.template_photos import views_from_photos

    errors: list[str] = []
    pairs = [(e.key, d) for e, d in photo_bytes(sources, errors)]
    for line in errors:
        print(f"skipped: {line}", file=sys.stderr)
    views, refused = views_from_photos(product, [d for _, d in pairs], [t for t in faces if not t.view])
    for i, why in refused:
        print(f"skipped: {pairs[i][0]}: {why}", file=sys.stderr)
    for v in views:
        v.source = pairs[int(v.source.split("#")[1])][0]
    if not views:
        raise ReferenceError(f"--views: none of the {len(pairs)} photos shares its print with another or with the "
                             f"template of {product}; nothing stored")
    return [(v, "view", ", identification view") for v in views]


def _list(args) -> int:
    db = ReferenceDB(args.db)
    rows = db.rows(args.product)
    if args.all:
        for row in rows:
            extra = (f"\t{row['kind']} {row['width']}x{row['height']} {row['keypoints']} keypoints"
                     if "kind" in row else "")
            print(f"{row['product']}\t{row['label']}\t{row['sha256'][:16]}\t{row['added_at']}\t{row['added_by']}\t"
                  f"{printable(str(row['source']))}\t{row['note']}{extra}")
        return 0
    faces = {}  # product -> "artwork 365x226 412 kp; photos ..." for the summary's template lines
    for row in rows:
        if "kind" in row:
            faces.setdefault(row["product"], []).append(f"{row['kind']} {row['width']}x{row['height']} "
                                                        f"{row['keypoints']} kp")
    if db.count():   # reference embeddings (whole-photo models) belong to one model and its calibrated fusion
        print(f"{printable(args.db)}: model {(db.model_sha256 or '-')[:16]}..., fusion "
              f"{'calibrated' if db.meta('fusion') else 'not calibrated'}")
    else:
        print(f"{printable(args.db)}:")
    for product, label, n in db.summary():
        if not args.product or product == args.product:
            detail = f"  ({'; '.join(faces[product])})" if label == "template" else ""
            print(f"  {product:<24} {label:<12} {n}{detail}")
    for line in _operating_points(db, args.product):
        print(line)
    return 0


def _operating_points(db, only: str | None) -> list[str]:
    """Per product: its genuine photos and, per comparator model that calibrated it (product_calibrations), the
    thresholds and the photos behind them; or how many more photos it needs (infer/product_calibration.py)."""
    from genuine.infer.product_calibration import MIN_CALIBRATION_PHOTOS, stored_calibrations
    from genuine.infer.variation_store import face_groups
    from genuine.infer.verdict import decisive

    groups = face_groups(db.conn)
    held: dict[str, int] = {}
    for (product, _), shas in groups.items():
        held[product] = held.get(product, 0) + len(shas)
    products = sorted({p for p, label, _ in db.summary() if label in ("template", "genuine photo")} | set(held))
    cals: dict[str, list[dict]] = {}
    for c in stored_calibrations(db.conn):
        cals.setdefault(c["product"], []).append(c)
    several = {p for p in products if sum(k[0] == p for k in groups) > 1}
    lines = []
    for product in products:
        if only and product != only:
            continue
        n = held.get(product, 0)
        head = f"  {product:<24} {n} genuine photo(s): "
        biggest = max((len(v) for k, v in groups.items() if k[0] == product), default=0)
        if biggest < MIN_CALIBRATION_PHOTOS:
            lines.append(head + f"not calibrated: {biggest} of {MIN_CALIBRATION_PHOTOS} genuine photos"
                         + (" (of one template)" if product in several else "")
                         + " (a model keeps its own thresholds for the products it was trained on)")
            continue
        if not cals.get(product):
            lines.append(head + "no model has calibrated it yet (done at its first inspection by a comparator model)")
            continue
        for c in cals[product]:
            cal = c["calibration"]
            side = f" template {c['template']}" if product in several else ""
            state = ("" if c["current"] else
                     "; stale: its genuine photos changed since (recomputed at the next inspection)")
            valid = "" if cal.get("validated", True) else f"; NOT VALIDATED ({cal.get('why')})"
            tg, ts = decisive(cal["threshold_genuine"], cal["threshold_suspect"])   # digits that tell them apart
            lines.append(head + f"model {c['model_sha256'][:16]}...{side}: GENUINE below {tg}, SUSPECT from {ts} "
                         f"(n={cal['photos']} genuine photos, {cal['scores']} scores, {c['fitted_at']}){state}{valid}")
    if lines:
        lines.insert(0, "operating points per product (comparator models; from each product's genuine photos):")
    return lines


def _remove(args) -> int:
    n = ReferenceDB(args.db).remove(args.product, args.label, args.sha256)
    print(f"removed {n} reference(s){'' if args.label else ' and template(s)'} from {printable(args.db)}")
    return 0


def _export(args) -> int:
    n = ReferenceDB(args.db).export(args.out, args.product)
    print(f"exported {n} reference(s), template(s) and genuine photo(s) to {printable(args.out)}")
    return 0


def _import(args) -> int:
    r = ReferenceDB(args.db, create=True).import_from(args.source)
    print(f"imported {r['added']} new reference(s), {r['templates']} new template(s) (identification views "
          f"included) and {r['genuine_photos']} new genuine photo(s) into {printable(args.db)}")
    return 0


def _reembed(args) -> int:
    n = ReferenceDB(args.db).reembed(_inspector(args.model))
    print(f"re-embedded {n} reference(s) with {printable(args.model)}; run genuine references calibrate again")
    return 0


ACTIONS = {"add": _add, "list": _list, "remove": _remove, "export": _export, "import": _import,
           "reembed": _reembed}   # calibrate fits on the train side: train.fusion, registered in genuine/cli.py
