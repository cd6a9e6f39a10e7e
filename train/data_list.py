"""`genuine data list DATA --split test`: the photo files of a split, one path per line, for scans and scripts.

    genuine data list datasets/synthpack --split test --products 00-fiisfi > runs/test.txt
    genuine scan model.onnx @runs/test.txt --templates refs.db --out runs/demo      # only the held-out photos

A scan of a product's folder also scores the photos that went into the store as its genuine references (and the
ones the model trained on); a list of the test split scores only what neither has seen. Torch-free.
"""
from __future__ import annotations

import os
import sys

from genuine.infer.errors import UsageError
from genuine.infer.photo import printable
from genuine.train.layout import discover


def main(args) -> int:
    ds = discover(args.root)
    wanted = [p for p in (args.products or "").split(",") if p]
    if unknown := sorted(set(wanted) - set(ds.products)):
        raise UsageError(f"{ds.root}: no product {', '.join(unknown)}; it has {', '.join(ds.products)}")
    if args.split != "all" and not any(r.split for r in ds.records):
        raise UsageError(f"{ds.root}: no train/val/test splits; split by item first: genuine data split {ds.root}")
    recs = [r for r in ds.records if (args.split == "all" or r.split == args.split)
            and (not wanted or r.product in wanted) and (not args.label or r.label == args.label)]
    out = sys.stdout.buffer if hasattr(sys.stdout, "buffer") else None
    for r in recs:   # the file name's own bytes: a list must name the file, whatever the terminal's encoding
        if out is not None:
            out.write(os.fsencode(r.path) + b"\n")
        else:
            print(printable(str(r.path)))
    if out is not None:
        out.flush()
    print(f"genuine data list: {len(recs)} photo(s) of {printable(str(ds.root))} ({args.split} split"
          f"{', ' + ', '.join(wanted) if wanted else ''}{', ' + args.label if args.label else ''})", file=sys.stderr)
    return 0
