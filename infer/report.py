"""One self-contained, offline HTML report for a `genuine scan` run (stdlib + numpy only).

    from genuine.infer.report import write_html
    write_html(run_dir / "report.html", rows, summary, run_dir, embed_limit=2000)

`rows` holds one dict per unique photo or bad file (keys: paths, sha256, verdict, authenticity,
p_counterfeit, product, product_confidence, reason, quality{"issues"}, error_kind, thumb), `summary`
the run's totals (read with .get, so missing keys only leave blanks). The page carries a header,
an inline-SVG histogram of authenticity and a sortable, filterable, paginated table of EVERY row.
It must open from a USB stick on an air-gapped laptop, hence: no external URL of any kind, inline
CSS/JS only, data as a JSON block that a hostile file name cannot break out of, and a CSP that
lets only our own script run. Heatmap thumbnails of the most suspicious `embed_limit` rows are
embedded as data: URIs; the rest are linked relative to run_dir (works while the report stays there).
"""
from __future__ import annotations

import base64
import hashlib
import html
import json
import math
import os
from collections import Counter
from pathlib import Path
from urllib.parse import quote

import numpy as np

from genuine.infer.atomic import atomic_write
from genuine.infer.report_page import _SCRIPT, _TEMPLATE
from genuine.infer.verdict import ERROR, GENUINE, INCONCLUSIVE, SUSPECT

ORDER = (GENUINE, SUSPECT, INCONCLUSIVE, ERROR)
COLOURS = {GENUINE: "#2e7d32", SUSPECT: "#c62828", INCONCLUSIVE: "#f0a000", ERROR: "#757575"}
_RANK = {SUSPECT: 0, INCONCLUSIVE: 1, ERROR: 2, GENUINE: 3}   # default table order
_MAX_EMBED = 512 * 1024   # a "small JPEG" bigger than this is linked, not inlined into the page

def _num(x):
    """float or None: NaN/inf would make JSON.parse reject the whole page, numpy scalars json.dumps."""
    try:
        x = float(x)
    except (TypeError, ValueError):
        return None
    return round(x, 4) if math.isfinite(x) else None


def _str(x):
    return None if x is None else os.fsdecode(x) if isinstance(x, (bytes, os.PathLike)) else str(x)


def _priority(r: dict):
    """SUSPECT by p_counterfeit desc, then INCONCLUSIVE, ERROR, GENUINE: the order an officer works in."""
    p, a = _num(r.get("p_counterfeit")), _num(r.get("authenticity"))
    return _RANK.get(r.get("verdict"), 2), -(p if p is not None else 1 - a if a is not None else 0.0)


def _thumb_src(run_dir: Path, thumb: str, embed: bool) -> str:
    rel = thumb.replace("\\", "/")
    if embed:
        try:
            data = (run_dir / rel).read_bytes()
            mime = "image/png" if data[:4] == b"\x89PNG" else "image/jpeg"
            return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"
        except OSError:
            pass   # vanished since planning: link it rather than lose the row
    # Percent-encoding turns any ':' into %3A, so a thumb value can never become a javascript:/http: URL.
    return quote(rel, safe="/", errors="surrogateescape")


def _row_json(r: dict, src) -> str:
    paths, quality = r.get("paths") or [], r.get("quality")
    paths = [paths] if isinstance(paths, (str, bytes, os.PathLike)) else paths
    issues = (quality.get("issues") if isinstance(quality, dict) else None) or []
    obj = {"p": [_str(p) for p in paths], "v": _str(r.get("verdict")) or ERROR, "a": _num(r.get("authenticity")),
           "pc": _num(r.get("p_counterfeit")), "pr": _str(r.get("product")), "c": _num(r.get("product_confidence")),
           "r": _str(r.get("reason")) or "", "q": [_str(i) for i in issues], "e": _str(r.get("error_kind")),
           "h": _str(r.get("sha256")), "t": src}
    # ASCII-only JSON with every '<' as \u003c: no "</script>" or "<!--" can end or confuse the data block.
    return json.dumps(obj, ensure_ascii=True, separators=(",", ":"), allow_nan=False).replace("<", "\\u003c")


_PAIR_SOURCES = {"product": "a product's own genuine photos", "model": "the model's validation",
                 "fusion": "the model's fusion with genuine photos"}


def _decided_by(r: dict):
    """(threshold_genuine, threshold_suspect, source) a scored record was decided by, or None where the record does
    not say (whole-photo models: the model's thresholds). evidence["thresholds"] is what the inspector compared p
    with: the fused pair or the product's own operating point, which summary["thresholds"] is not."""
    th = (r.get("evidence") if isinstance(r.get("evidence"), dict) else {}).get("thresholds")
    if not isinstance(th, dict):
        return None
    tg, ts = _num(th.get("threshold_genuine")), _num(th.get("threshold_suspect"))
    return None if tg is None or ts is None else (tg, ts, _str(th.get("source")) or "?")


def histogram_thresholds(rows: list[dict], fallback) -> tuple[dict | None, str]:
    """The threshold pair to draw on the histogram and a caption saying what it is. One pair for every scored
    record: that pair. Pairs differing per product: the most common one, and the caption says how many photos it
    decided (the others: see the operating point per product). No record naming its pair: `fallback`, the
    model's thresholds (summary["thresholds"])."""
    scored = [r for r in rows if r.get("verdict") in (GENUINE, INCONCLUSIVE, SUSPECT)
              and _num(r.get("authenticity")) is not None]
    pairs = Counter(p for p in map(_decided_by, scored) if p is not None)
    if not pairs:
        ok = isinstance(fallback, dict)
        return (fallback if ok else None), ("dashed lines: the model's thresholds" if ok else "")
    (tg, ts, source), n = pairs.most_common(1)[0]
    drawn = {"threshold_genuine": tg, "threshold_suspect": ts}
    where = _PAIR_SOURCES.get(source, "a source not recorded")   # our words only: records are untrusted text
    if len(pairs) == 1 and n == len(scored):
        return drawn, f"dashed lines: the thresholds every photo was decided by (from {where})"
    return drawn, (f"per-product thresholds apply: the dashed lines are the pair that decided {n:,} of "
                   f"{len(scored):,} scored photos (from {where}); the others were decided by other thresholds "
                   f"({len(pairs)} pairs in all; see the operating point per product)")


def _histogram_svg(rows: list[dict], thresholds) -> str:
    """Stacked 20-bin histogram of authenticity per verdict, as inline SVG (no xmlns: inline SVG needs none)."""
    edges, stack = np.linspace(0.0, 1.0, 21), (GENUINE, INCONCLUSIVE, SUSPECT)
    vals = {v: [] for v in stack}
    for r in rows:
        if r.get("verdict") in vals and _num(r.get("authenticity")) is not None:
            vals[r["verdict"]].append(min(max(_num(r["authenticity"]), 0.0), 1.0))
    counts = {v: np.histogram(np.asarray(vals[v], np.float64), bins=edges)[0] for v in stack}
    peak = int(sum(counts.values()).max())
    raw = max(peak, 1) / 5   # y ticks at a 1/2/5 x 10^k step, at most ~5 of them
    mag = 10 ** math.floor(math.log10(raw)) if raw >= 1 else 1
    step = next(int(f * mag) for f in (1, 2, 5, 10) if f * mag >= raw)
    top = max(step, -(-peak // step) * step)
    W, H, L, T, pw, ph = 720, 270, 64, 14, 476, 208
    sx, sy = (lambda a: L + a * pw), (lambda n: T + ph - n * ph / top)
    out = [f'<svg class="hist" width="{W}" height="{H}" viewBox="0 0 {W} {H}" role="img" '
           'aria-label="histogram of authenticity per verdict">']
    out += [f'<line x1="{L}" x2="{L + pw}" y1="{sy(n):.1f}" y2="{sy(n):.1f}" stroke="#e3e3e3"/>'
            f'<text x="{L - 6}" y="{sy(n) + 4:.1f}" text-anchor="end">{n:,}</text>' for n in range(0, top + 1, step)]
    for i in range(20):
        base = 0
        for v in stack:
            if n := int(counts[v][i]):   # <title> gives exact counts on hover: small bars stay readable
                out.append(f'<rect x="{sx(edges[i]) + 1:.1f}" y="{sy(base + n):.1f}" width="{pw / 20 - 2:.1f}" '
                           f'height="{max(sy(base) - sy(base + n), 0.5):.1f}" fill="{COLOURS[v]}"><title>{v} '
                           f'{edges[i]:.2f}-{edges[i + 1]:.2f}: {n:,}</title></rect>')
                base += n
    out.append(f'<path d="M{L} {T}V{T + ph}H{L + pw}" fill="none" stroke="#333"/>')
    out += [f'<line x1="{sx(a):.1f}" x2="{sx(a):.1f}" y1="{T + ph}" y2="{T + ph + 5}" stroke="#333"/>'
            f'<text x="{sx(a):.1f}" y="{T + ph + 18}" text-anchor="middle">{a:g}</text>' for a in (0, .25, .5, .75, 1)]
    out.append(f'<text x="{L + pw / 2}" y="{H - 6}" text-anchor="middle">authenticity (probability genuine)</text>'
               f'<text transform="translate(14 {T + ph / 2}) rotate(-90)" text-anchor="middle">photos</text>')
    for key, dx, anchor in (("threshold_genuine", 3, "start"), ("threshold_suspect", -3, "end")):
        t = _num((thresholds if isinstance(thresholds, dict) else {}).get(key))   # on p_counterfeit; axis is 1 - p
        if t is not None and 0 <= t <= 1:   # each label sits on its verdict's side of the line
            out.append(f'<line x1="{sx(1 - t):.1f}" x2="{sx(1 - t):.1f}" y1="{T}" y2="{T + ph}" stroke="#333" '
                       f'stroke-dasharray="4 3"/><text x="{sx(1 - t) + dx:.1f}" y="{T + 10}" '
                       f'text-anchor="{anchor}">{key[10:]}</text>')
    for j, v in enumerate(reversed(stack)):
        out.append(f'<rect x="{L + pw + 20}" y="{T + 8 + 22 * j}" width="14" height="14" fill="{COLOURS[v]}"/>'
                   f'<text x="{L + pw + 40}" y="{T + 20 + 22 * j}">{v} ({len(vals[v]):,})</text>')
    if not peak:
        out.append(f'<text x="{L + pw / 2}" y="{T + ph / 2}" text-anchor="middle">no scored photos</text>')
    return "".join(out + ["</svg>"])


def _header(summary: dict, n_rows: int, embedded: int, linked: int) -> str:
    def e(x):   # every summary value is untrusted text (paths, product names)
        return html.escape(_str(x), quote=True)
    g = summary.get if isinstance(summary, dict) else (lambda k: None)
    counts, errors, per_product = (g(k) if isinstance(g(k), dict) else {} for k in ("counts", "errors", "per_product"))
    total = lambda c: sum(int(x or 0) for x in c.values()) if isinstance(c, dict) else 0   # noqa: E731
    el, pps, srcs = _num(g("elapsed_s")), _num(g("photos_per_s")), g("sources") or []
    n_photos = g("total_photos") if g("total_photos") is not None else "?"
    meta = [f'finished {e(g("finished") or "?")}', f"{e(n_photos)} photos", f"{n_rows:,} rows",
            f'{e(g("duplicates") or 0)} duplicates'] + \
        ([f"{el:,.1f} s"] if el is not None else []) + ([f"{pps:,.1f} photos/s"] if pps is not None else [])
    out = ["<h1>genuine scan report</h1>", f'<p class="meta">{" &middot; ".join(meta)}</p>']
    if g("model_warning"):  # a report is shared without the terminal that printed the warning
        out.append(f'<p class="warning">{e(g("model_warning"))}</p>')
    out.append('<div class="cards">')
    for v in list(ORDER) + [k for k in counts if k not in ORDER]:
        n = int(counts.get(v) or (total(errors) if v == ERROR else 0))
        pct = 100 * n / (total(counts) or 1)
        out.append(f'<div class="card {v if v in ORDER else ERROR}">{e(v)}<b>{n:,}</b>{pct:.1f}%</div>')
    srcs = [srcs] if isinstance(srcs, str) else list(srcs)
    kv = [("model sha256", e(g("model_sha256") or "?")),
          ("validation", e(g("validation") or "not recorded")),
          ("sources", "<br>".join(map(e, srcs[:50])) + (f"<br>... and {len(srcs) - 50:,} more" * (len(srcs) > 50))),
          ("errors", ", ".join(f"{e(k)}: {e(v)}" for k, v in sorted(errors.items(), key=str)) or "none"),
          ("thumbnails", f"{embedded:,} embedded in this file" + (f", {linked:,} linked relative to this file "
                         "(shown only while the report stays in its run folder)" if linked else ""))]
    out += ["</div>", '<dl class="kv">'] + [f"<dt>{k}</dt><dd>{v}</dd>" for k, v in kv] + ["</dl>"]
    if per_product:
        out.append("<h2>Per product</h2><table><thead><tr><th>product</th>"
                   + "".join(f"<th>{c}</th>" for c in ORDER) + "<th>total</th></tr></thead><tbody>")
        for prod, c in sorted(per_product.items(), key=lambda kv: -total(kv[1])):
            c = c if isinstance(c, dict) else {}
            cells = "".join(f'<td class="num">{int(c.get(v) or 0):,}</td>' for v in ORDER)
            out.append(f'<tr><td>{e(prod)}</td>{cells}<td class="num">{total(c):,}</td></tr>')
        out.append("</tbody></table>")
    cals = g("product_calibrations")
    if isinstance(cals, dict) and cals:
        out.append(_thresholds_table(cals, e))
    return "\n".join(out)


_SOURCES = {"product": "its own genuine photos", "model": "the model's validation",
            "fusion": "the model's fusion with genuine photos"}


def _thresholds_table(cals: dict, e) -> str:
    """Per product, the operating point its photos were judged by (summary["product_calibrations"])."""
    def num(x, d=3):
        x = _num(x)
        return "" if x is None else f"{x:.{d}f}"
    out = ['<h2>Operating point per product</h2><table><thead><tr><th>product</th><th>thresholds from</th>'
           '<th>GENUINE below</th><th>SUSPECT from</th><th>genuine photos</th><th>held-out genuine photos: '
           'GENUINE / SUSPECT</th><th>note</th></tr></thead><tbody>']
    for prod, th in sorted(cals.items(), key=lambda kv: str(kv[0])):
        th = th if isinstance(th, dict) else {}
        cal = th.get("calibration") if isinstance(th.get("calibration"), dict) else {}
        rates = cal.get("held_out_genuine") if isinstance(cal.get("held_out_genuine"), dict) else {}
        shares = (f"{num(rates.get('GENUINE'), 2)} / {num(rates.get('SUSPECT'), 2)}" if rates else "")
        note = th.get("note") or (cal.get("why") if cal.get("validated") is False else None) or \
            (f"{cal.get('scores')} scores, {cal.get('folds')} folds" if cal else "")
        out.append(f'<tr><td>{e(prod)}</td><td>{e(_SOURCES.get(th.get("source"), th.get("source") or "?"))}</td>'
                   f'<td class="num">{num(th.get("threshold_genuine"))}</td>'
                   f'<td class="num">{num(th.get("threshold_suspect"))}</td>'
                   f'<td class="num">{e(cal.get("photos", ""))}</td><td class="num">{e(shares)}</td>'
                   f'<td>{e(note)}</td></tr>')
    out.append("</tbody></table>")
    return "\n".join(out)


def write_html(path, rows: list[dict], summary: dict, run_dir, embed_limit: int = 2000) -> None:
    path, run_dir = Path(path), Path(run_dir)
    ordered = sorted(rows, key=_priority)
    thumbs = [(i, _str(r["thumb"])) for i, r in enumerate(ordered) if r.get("thumb")]   # str or Path
    # Plan the embedding first: the header states the count, and rows then stream to disk one JSON
    # object at a time (10^6 rows would otherwise sit in memory twice). Missing files use no budget.
    embed = set()
    for i, t in thumbs:
        try:
            if len(embed) < embed_limit and (run_dir / t.replace("\\", "/")).stat().st_size <= _MAX_EMBED:
                embed.add(i)
        except OSError:
            pass
    head, tail = _TEMPLATE.split("@@DATA@@")
    # The verdict names come from infer.verdict, here as in the page's script (whose hash the page's CSP pins).
    script = _SCRIPT.replace("@@RANK@@", json.dumps(_RANK)).replace("@@ERROR@@", json.dumps(ERROR))
    filters = "\n".join(f'<label><input type="checkbox" class="vf" value="{v}" checked> {v}</label>'
                        for v in sorted(_RANK, key=_RANK.get))
    digest = base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode("ascii")
    drawn, caption = histogram_thresholds(ordered, summary.get("thresholds") if isinstance(summary, dict) else None)
    svg = _histogram_svg(ordered, drawn)
    if caption:   # our own words and numbers only: no untrusted text goes where markers are still replaced
        svg += f'\n<p class="meta">{html.escape(caption)}</p>'
    # The header (untrusted text) is substituted last so its content is never scanned for markers.
    head = (head.replace("@@HASH@@", f"sha256-{digest}").replace("@@HISTOGRAM@@", svg).replace("@@FILTERS@@", filters)
            .replace("@@HEADER@@", _header(summary, len(ordered), len(embed), len(thumbs) - len(embed))))

    def enc(s: str) -> bytes:   # undecodable file names (lone surrogates) must not abort a 10^6-photo report
        return s.encode("utf-8", "backslashreplace")
    with atomic_write(path) as f:   # readers see the old report or the new one, never half a file
        f.write(enc(head) + b"[")
        for i, r in enumerate(ordered):
            src = _thumb_src(run_dir, _str(r["thumb"]), i in embed) if r.get("thumb") else None
            f.write((b",\n" if i else b"") + enc(_row_json(r, src)))
        f.write(b"]" + enc(tail.replace("@@SCRIPT@@", script)))
