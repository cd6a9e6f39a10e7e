"""How the page's identification margin trades right names for wrong ones, on photos it never saw (issue 25).

    python bench/page_margin.py SITE PHOTOS... [--margins 1.5,2,2.5,3,4] [--json out.json]
    ls ../shared/data/grocery-packages/photos/train/*/*/*.jpg | awk 'NR % 6 == 5' > held-out.txt
    python bench/page_margin.py runs/site-grocery @held-out.txt

Each photo is inspected undeclared in headless chromium; its distinctive-evidence candidates (the page reports them
whatever the margin) say which product each margin would name: the best one when its evidence reaches the store's
min_evidence and margin x the runner-up's. A photo's product is its folder's name. With a site built from catalogue
images alone, every shop photo is held out from identification (genuine photos only feed the variation).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from page import ARGS, open_page, page_inspect, photos_of  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("site")
    ap.add_argument("photos", nargs="+")
    ap.add_argument("--margins", default="1.5,2,2.5,3,4")
    ap.add_argument("--json", help="write every photo's candidates here")
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    args = ap.parse_args(argv)
    from playwright.sync_api import sync_playwright

    from genuine.infer.page_serve import serve

    photos = photos_of(args.photos)
    site = json.loads((Path(args.site) / "site.json").read_text())
    floor = site["constants"]["rectify"]["min_evidence"]
    server, url = serve(args.site)
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=args.chromium, headless=True, args=ARGS)
            page = open_page(browser, url, 2)[0]
            rows = [(page_inspect(page, p, None)[0].get("rectification") or {}) for p in photos]
            browser.close()
    finally:
        server.shutdown()
    print(f"| margin | named right | named wrong | of {len(photos)} photos |")
    for m in (float(x) for x in args.margins.split(",")):
        right = wrong = 0
        for p, r in zip(photos, rows):
            c = r.get("candidates") or []
            if c and c[0][1] >= floor and c[0][1] >= m * (c[1][1] if len(c) > 1 else 0):
                right += c[0][0] == p.parent.name
                wrong += c[0][0] != p.parent.name
        print(f"| {m:g} | {right} | {wrong} | |")
    if args.json:
        Path(args.json).write_text(json.dumps([{"photo": str(p), "identified": r.get("identified"),
                                                "candidates": r.get("candidates")} for p, r in zip(photos, rows)]))
        print(f"Results saved to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
