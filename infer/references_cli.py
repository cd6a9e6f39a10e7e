"""`genuine references ...`: manage a reference gallery (no torch needed except for `calibrate`).

    genuine references add model.onnx --db refs.db --product acme-tea refs/acme-tea/ --note "factory samples"
    genuine references list --db refs.db
    genuine references remove --db refs.db --product acme-tea [--label counterfeit]
    genuine references export --db refs.db acme.db [--product acme-tea]
    genuine references import --db refs.db acme.db
    genuine references reembed new-model.onnx --db refs.db
"""
from __future__ import annotations

import sys

from infer.references import ReferenceDB, ReferenceError


def _inspector(model):
    from infer.inspector import Inspector

    return Inspector(model)


def main(args) -> int:
    try:
        return ACTIONS[args.ref_command](args)
    except ReferenceError as e:
        print(f"genuine references: {e}", file=sys.stderr)
        return 2


def _add(args) -> int:
    db = ReferenceDB(args.db, create=True)
    r = db.add(_inspector(args.model), args.product, args.photos, label=args.label, note=args.note or "")
    for line in r["quality"]:
        print(f"warning: {line}", file=sys.stderr)
    for line in r["errors"]:
        print(f"skipped: {line}", file=sys.stderr)
    print(f"{args.product} ({args.label}): {r['added']} added, {len(r['duplicates'])} already present, "
          f"{len(r['errors'])} unreadable; {db.count()} references in {args.db}")
    return 0 if not r["errors"] else 3


def _list(args) -> int:
    db = ReferenceDB(args.db)
    if args.all:
        for row in db.rows(args.product):
            print(f"{row['product']}\t{row['label']}\t{row['sha256'][:16]}\t{row['added_at']}\t{row['added_by']}\t"
                  f"{row['source']}\t{row['note']}")
        return 0
    print(f"{args.db}: model {(db.model_sha256 or '-')[:16]}..., fusion {'calibrated' if db.meta('fusion') else 'not calibrated'}")
    for product, label, n in db.summary():
        if not args.product or product == args.product:
            print(f"  {product:<24} {label:<12} {n}")
    return 0


def _remove(args) -> int:
    n = ReferenceDB(args.db).remove(args.product, args.label, args.sha256)
    print(f"removed {n} reference(s) from {args.db}")
    return 0


def _export(args) -> int:
    n = ReferenceDB(args.db).export(args.out, args.product)
    print(f"exported {n} reference(s) to {args.out}")
    return 0


def _import(args) -> int:
    r = ReferenceDB(args.db, create=True).import_from(args.source)
    print(f"imported {r['added']} new reference(s) into {args.db}")
    return 0


def _reembed(args) -> int:
    n = ReferenceDB(args.db).reembed(_inspector(args.model))
    print(f"re-embedded {n} reference(s) with {args.model}; run genuine references calibrate again")
    return 0


def _calibrate(args) -> int:
    from genuine.cli import require_extra

    require_extra("train", "references calibrate", ["sklearn"])
    from train.fusion import main as calibrate_main

    return calibrate_main(args)


ACTIONS = {"add": _add, "list": _list, "remove": _remove, "export": _export, "import": _import,
           "reembed": _reembed, "calibrate": _calibrate}
