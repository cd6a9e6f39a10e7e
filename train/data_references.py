"""`genuine data references DATA --db refs.db`: a dataset's templates and genuine photos into a reference store.

    genuine data references datasets/synthpack --db refs.db              # train split's genuine photos
    genuine data references datasets/synthpack --db refs.db --split train,val --products 00-fiisfi

For each product: its template (DATA/<product>/template.png) and the genuine photos of the chosen split(s),
aligned to it and kept (infer/variation_store.py), so that `genuine inspect` and `genuine scan` with `--templates
refs.db` check every photo against the template and against how genuine units of the product vary. The default
split is train: the photos a model will be tested on never enter the store, so a scan of the test split is honest.
Products already in the store keep their templates; photos already there are not added twice. Torch-free.
"""
from __future__ import annotations

import sys

from genuine.infer.errors import UsageError
from genuine.infer.photo import printable
from genuine.infer.references import ReferenceDB
from genuine.infer.templates import TEMPLATE_NAMES
from genuine.infer.variation import MIN_PHOTOS
from genuine.infer.variation_store import add_genuine_photos
from genuine.train.layout import discover


def main(args) -> int:
    ds = discover(args.root)
    splits = [s for s in args.split.split(",") if s]
    wanted = [p for p in (args.products or "").split(",") if p]
    unknown = set(wanted) - set(ds.products)
    if unknown:
        raise UsageError(f"--products: {', '.join(sorted(unknown))} not in {ds.root}")
    if ds.manifest is None and splits != ["all"]:
        raise UsageError(f"{ds.root} has no manifest.csv, so no splits: run genuine data split {ds.root} first, or "
                         f"pass --split all to add every genuine photo")
    db = ReferenceDB(args.db, create=True)
    status = 0
    for product in wanted or ds.products:
        template = next((ds.root / product / n for n in TEMPLATE_NAMES if (ds.root / product / n).is_file()), None)
        if template is None and not db.template_count(product):
            print(f"{product}: skipped, no template in {ds.root / product} nor in {args.db}", file=sys.stderr)
            status = 3
            continue
        if template is not None:
            db.add_template(product, str(template), source=str(template), note=f"from {ds.root}")
        photos = [str(r.path) for r in ds.records if r.product == product and r.label == "genuine"
                  and (splits == ["all"] or r.split in splits)]
        r = add_genuine_photos(db.conn, product, photos)
        for line in r["errors"]:
            print(f"  skipped: {line}", file=sys.stderr)
        short = "" if r["photos"] >= MIN_PHOTOS else f" (fewer than {MIN_PHOTOS}: its genuine variation is not used)"
        print(f"{printable(product)}: template and {r['added']} genuine photo(s) added, "
              f"{len(r['duplicates'])} already there, "
              f"{len(r['errors'])} not aligned; {r['photos']} in the store{short}")
    print(f"Results saved to {printable(args.db)}")
    print(f"Next: genuine scan MODEL.onnx PHOTOS --templates {printable(args.db)} --out runs/scan")
    return status
