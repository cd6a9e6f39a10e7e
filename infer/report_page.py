"""The report page's HTML skeleton and script (kept apart from the Python that fills them)."""

_SCRIPT = r"""
"use strict";
(function () {
  var ROWS = JSON.parse(document.getElementById("rows").textContent), PAGE = 500;
  var RANK = @@RANK@@, ERROR = @@ERROR@@, $$ = document.querySelectorAll.bind(document);
  var KEYS = {path: function (r) { return (r.p[0] || "").toLowerCase(); },
              verdict: function (r) { return r.v in RANK ? RANK[r.v] : 9; },
              auth: function (r) { return r.a; }, pconf: function (r) { return r.c; },
              product: function (r) { return r.pr === null ? null : r.pr.toLowerCase(); },
              issues: function (r) { return r.e ? "~" + r.e : r.q.join(", "); }};   /* errors sort after issues */
  var q = document.getElementById("q"), tb = document.getElementById("tb");
  var view = ROWS, page = 0, sortKey = null, sortDir = 1, timer = 0;
  function el(tag, cls, text) {   /* all data goes in as text (textContent), never as markup */
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = text;
    return e;
  }
  function fmt(x) { return x === null || x === undefined ? "" : x.toFixed(3); }
  function hay(r) {
    if (r._s === undefined) r._s = [r.p.join("\n"), r.pr || "", r.r, r.e || "", r.h || ""].join("\n").toLowerCase();
    return r._s;
  }
  function apply() {
    var text = q.value.trim().toLowerCase(), on = {};
    $$("input.vf").forEach(function (b) { on[b.value] = b.checked; });
    view = ROWS.filter(function (r) { return (!(r.v in on) || on[r.v]) && (!text || hay(r).indexOf(text) >= 0); });
    if (sortKey) {   /* decorate-sort-undecorate; ties keep the suspicion order; blanks last either way */
      var f = KEYS[sortKey], d = sortDir;
      view = view.map(function (r, i) { return [f(r), i, r]; }).sort(function (x, y) {
        var a = x[0], b = y[0];
        if (a === b) return x[1] - y[1];
        if (a === null || a === undefined) return 1;
        if (b === null || b === undefined) return -1;
        return (a < b ? -1 : 1) * d;
      }).map(function (k) { return k[2]; });
    }
    page = 0;
    render();
  }
  function row(r) {
    var tr = el("tr"), td = tr.appendChild(el("td"));
    if (r.t) {
      var img = td.appendChild(el("img", "th"));
      img.loading = "lazy"; img.alt = "heatmap"; img.src = r.t;
      img.addEventListener("click", function () { img.classList.toggle("big"); });
    }
    td = tr.appendChild(el("td", "path"));
    td.appendChild(el("div", null, r.p.length ? r.p[0] : "(no path)"));
    if (r.p.length > 1) {   /* duplicates: tooltip for a glance, <details> for the full list */
      var rest = r.p.slice(1), d = td.appendChild(el("details"));
      d.appendChild(el("summary", "small", "+" + rest.length + " more")).title =
        rest.slice(0, 50).join("\n") + (rest.length > 50 ? "\n..." : "");
      rest.slice(0, 500).forEach(function (p) { d.appendChild(el("div", null, p)); });
      if (rest.length > 500) d.appendChild(el("div", "small", "... and " + (rest.length - 500) + " more"));
    }
    tr.appendChild(el("td", "v " + (r.v in RANK ? r.v : ERROR), r.v)).title = r.r;
    tr.appendChild(el("td", "num", fmt(r.a)));
    tr.appendChild(el("td", null, r.pr));
    tr.appendChild(el("td", "num", fmt(r.c)));
    td = tr.appendChild(el("td"));
    if (r.e) td.appendChild(el("div", "err", r.e));
    else if (r.q.length) td.appendChild(el("div", null, r.q.join(", ")));
    if (r.r) td.appendChild(el("div", "small", r.r));
    return tr;
  }
  function render() {   /* only one page of DOM at a time keeps 10^5+ rows responsive */
    var n = view.length, pages = Math.max(1, Math.ceil(n / PAGE));
    page = Math.min(Math.max(page, 0), pages - 1);
    var start = page * PAGE, end = Math.min(n, start + PAGE), frag = document.createDocumentFragment();
    for (var i = start; i < end; i++) frag.appendChild(row(view[i]));
    tb.textContent = "";
    tb.appendChild(frag);
    var info = (n ? "rows " + (start + 1).toLocaleString() + "-" + end.toLocaleString() + " of " + n.toLocaleString()
                  : "no rows match")
               + (n !== ROWS.length ? " (filtered from " + ROWS.length.toLocaleString() + ")" : "")
               + ", page " + (page + 1) + " of " + pages;
    $$(".pager").forEach(function (p) {
      p.querySelector(".info").textContent = info;
      p.querySelector(".prev").disabled = page === 0;
      p.querySelector(".next").disabled = page >= pages - 1;
    });
  }
  function go(delta) { page += delta; render(); document.getElementById("tbl").scrollIntoView(); }
  $$(".pager .prev").forEach(function (b) { b.addEventListener("click", function () { go(-1); }); });
  $$(".pager .next").forEach(function (b) { b.addEventListener("click", function () { go(1); }); });
  $$("input.vf").forEach(function (b) { b.addEventListener("change", apply); });
  q.addEventListener("input", function () {   /* debounce: filtering 10^6 rows per keystroke would stutter */
    clearTimeout(timer);
    timer = setTimeout(apply, ROWS.length > 20000 ? 300 : 50);
  });
  $$("th.s").forEach(function (th) {
    th.addEventListener("click", function () {
      var k = th.getAttribute("data-k");
      if (sortKey === k) sortDir = -sortDir; else { sortKey = k; sortDir = 1; }
      $$("th.s").forEach(function (h) { h.removeAttribute("aria-sort"); });
      th.setAttribute("aria-sort", sortDir > 0 ? "ascending" : "descending");
      apply();
    });
  });
  apply();
})();
"""

# 'unsafe-inline' is ignored by CSP2+ browsers once a hash is present; it only keeps CSP1 browsers working.
_TEMPLATE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; script-src '@@HASH@@' 'unsafe-inline'; \
style-src 'unsafe-inline'; img-src * data: blob: file:; base-uri 'none'; form-action 'none'">
<title>genuine scan report</title>
<style>
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0 auto;max-width:1400px;
 padding:16px 24px;color:#222;background:#fafafa}
h1{font-size:22px;margin:0 0 4px}h2{font-size:16px;margin:24px 0 8px}
.meta,.small{color:#666}.small{font-size:12px}.err{font-weight:600}
.warning{background:#fdecea;border:1px solid #b71c1c;color:#b71c1c;padding:8px 12px;font-weight:600}
dl.kv{display:grid;grid-template-columns:max-content 1fr;gap:2px 14px;margin:8px 0}
dl.kv dt{color:#666}dl.kv dd{margin:0;word-break:break-all}
.cards{display:flex;gap:12px;flex-wrap:wrap;margin:12px 0}.card{border-radius:6px;padding:8px 14px;min-width:120px}
.card b{display:block;font-size:22px}
.GENUINE{background:#2e7d32;color:#fff}.SUSPECT{background:#c62828;color:#fff}
.INCONCLUSIVE{background:#f0a000;color:#222}.ERROR{background:#757575;color:#fff}
table{border-collapse:collapse;background:#fff}
th,td{border-bottom:1px solid #e3e3e3;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f0f0f0;position:sticky;top:0}th.s{cursor:pointer;user-select:none;white-space:nowrap}
th.s:hover{background:#e4e4e4}th[aria-sort=ascending]::after{content:" \\25B2"}
th[aria-sort=descending]::after{content:" \\25BC"}
td.num{text-align:right;font-variant-numeric:tabular-nums}td.v{font-weight:600;text-align:center}
td.path{word-break:break-all;max-width:520px;font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12px}
img.th{height:64px;cursor:zoom-in;display:block}img.th.big{height:auto;max-width:480px;cursor:zoom-out}
.controls,.pager{display:flex;gap:16px;align-items:center;flex-wrap:wrap;margin:8px 0}
svg text{font:12px system-ui,sans-serif;fill:#333}
</style></head><body>
@@HEADER@@
<h2>Authenticity histogram</h2>
@@HISTOGRAM@@
<h2 id="tbl">Photos</h2>
<div class="controls"><input id="q" type="search" placeholder="filter path, product, reason" size="40">
@@FILTERS@@</div>
<div class="pager"><button class="prev" type="button">prev</button><span class="info"></span>
<button class="next" type="button">next</button></div>
<table><thead><tr><th>heatmap</th><th class="s" data-k="path">path</th><th class="s" data-k="verdict">verdict</th>
<th class="s" data-k="auth">authenticity</th><th class="s" data-k="product">product</th>
<th class="s" data-k="pconf">product confidence</th><th class="s" data-k="issues">issues / error</th></tr></thead>
<tbody id="tb"></tbody></table>
<div class="pager"><button class="prev" type="button">prev</button><span class="info"></span>
<button class="next" type="button">next</button></div>
<noscript><p>The table needs JavaScript; the data is in the JSON block of this file.</p></noscript>
<script type="application/json" id="rows">@@DATA@@</script>
<script>@@SCRIPT@@</script>
</body></html>
"""
