"""infer/page_serve.py on a small hand-made site: MIME types, COOP/COEP, refusals; and, in Debian's chromium, that
the page is crossOriginIsolated and that a cache-first service worker reloads it with the server gone, offline."""
from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.request

import pytest
from page_browser import browser, collect_errors, offline, skip_unless_browser

from genuine.infer.errors import GenuineError
from genuine.infer.page_serve import serve

WASM = b"\0asm\1\0\0\0"   # the smallest valid module: magic + version, no sections

INDEX = """<!doctype html>
<html><head><meta charset="utf-8"><title>test site</title>
<link rel="icon" href="icon.svg"></head>
<body><p id="out">loading</p>
<script type="module">
  import { answer } from "./mod.mjs";
  // instantiateStreaming refuses anything not served as application/wasm
  await WebAssembly.instantiateStreaming(fetch("a.wasm"));
  const site = await (await fetch("site.json")).json();
  document.getElementById("out").textContent = `ready ${answer} ${site.format}`;
  if ("serviceWorker" in navigator) await navigator.serviceWorker.register("sw.js");
</script></body></html>
"""

# Cache everything on install, serve cache-first; skipWaiting + clients.claim so the page that registered it is
# controlled at once rather than from its next load.
SW = """
const FILES = ["./", "index.html", "mod.mjs", "a.wasm", "site.json", "icon.svg"];
self.addEventListener("install", (e) => {
  e.waitUntil(caches.open("v1").then((c) => c.addAll(FILES)).then(() => self.skipWaiting()));
});
self.addEventListener("activate", (e) => e.waitUntil(self.clients.claim()));
self.addEventListener("fetch", (e) => {
  e.respondWith(caches.match(e.request).then((hit) => hit || fetch(e.request)));
});
"""


@pytest.fixture
def site(tmp_path):
    root = tmp_path / "site"
    (root / "sub").mkdir(parents=True)
    (root / "index.html").write_text(INDEX)
    (root / "site.json").write_text(json.dumps({"format": "genuine-page/1"}))
    (root / "mod.mjs").write_text("export const answer = 42;\n")
    (root / "a.wasm").write_bytes(WASM)
    (root / "sw.js").write_text(SW)
    (root / "manifest.webmanifest").write_text("{}")
    (root / "icon.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg"/>')
    (root / "model.onnx").write_bytes(b"onnx")
    (root / "sub" / "x.bin").write_bytes(b"\1\2")
    (tmp_path / "secret.txt").write_text("outside")
    return root


@pytest.fixture
def served(site):
    server, url = serve(site)
    yield server, url
    server.shutdown()
    server.server_close()


def get(url, path, method="GET"):
    """(status, headers, body) without following redirects or raising on 404."""
    host_port = url.split("//")[1].rstrip("/")
    conn = http.client.HTTPConnection(host_port, timeout=10)
    conn.request(method, path)   # sent as written: urllib would normalise the ".." away first
    r = conn.getresponse()
    body = r.read()
    conn.close()
    return r.status, r.headers, body


@pytest.mark.parametrize("path,mime", [
    ("/a.wasm", "application/wasm"), ("/mod.mjs", "text/javascript"), ("/sw.js", "text/javascript"),
    ("/manifest.webmanifest", "application/manifest+json"), ("/model.onnx", "application/octet-stream"),
    ("/sub/x.bin", "application/octet-stream"), ("/site.json", "application/json"), ("/icon.svg", "image/svg+xml"),
    ("/", "text/html"), ("/index.html", "text/html")])
def test_mime_and_headers(served, path, mime):
    status, headers, _ = get(served[1], path)
    assert status == 200
    assert headers["Content-Type"].split(";")[0] == mime
    assert headers["Cross-Origin-Opener-Policy"] == "same-origin"
    assert headers["Cross-Origin-Embedder-Policy"] == "require-corp"
    assert headers["Cache-Control"] == "no-cache"
    assert headers["X-Content-Type-Options"] == "nosniff"


def test_body_and_url(served, site):
    server, url = served
    assert url == f"http://127.0.0.1:{server.server_address[1]}/"
    with urllib.request.urlopen(url + "a.wasm", timeout=10) as r:
        assert r.read() == WASM


@pytest.mark.parametrize("path", ["/../secret.txt", "/sub/../../secret.txt", "/%2e%2e/secret.txt",
                                  "/sub%2f..%2f..%2fsecret.txt", "/link/secret.txt", "/sub/", "/nothing.js", "/%00", "/..%5csecret.txt"])
def test_refused(served, site, path):
    (site / "link").symlink_to(site.parent, target_is_directory=True)   # a symlink out of the site
    status, headers, body = get(served[1], path)
    assert status == 404
    assert b"outside" not in body
    assert headers["Cross-Origin-Embedder-Policy"] == "require-corp"   # errors too


def test_quiet(served, capsys):
    get(served[1], "/index.html")
    assert capsys.readouterr().err == ""


def test_main_prints_and_stops_on_ctrl_c(site, monkeypatch, capsys):
    import genuine.infer.page_serve as ps

    def ctrl_c():   # stands in for the wait forever: Ctrl+C at once
        raise KeyboardInterrupt

    monkeypatch.setattr(ps, "_forever", ctrl_c)
    assert ps.run(site, "127.0.0.1", 0) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"Serving {site} at http://127.0.0.1:") and out.endswith("/ (Ctrl+C to stop)\n")


@pytest.mark.parametrize("missing", ["index.html", "site.json"])
def test_not_a_site(site, missing):
    (site / missing).unlink()
    with pytest.raises(GenuineError, match=f"no {missing}"):
        serve(site)


def test_offline_reload_in_chromium(site):
    """crossOriginIsolated, wasm streamed, and a reload served by the service worker with the server stopped and
    the context offline. What it needs: navigator.serviceWorker.ready (installed, cache filled, active) before going
    offline; without it the reload fails with ERR_INTERNET_DISCONNECTED. A reload is a navigation, which the scope's
    active worker serves even when it does not control the old page yet; the controller wait is for the page's own
    fetches (loading the model, say) offline without a reload: that needs clients.claim() in the worker."""
    skip_unless_browser()
    server, url = serve(site)
    try:
        with browser() as b:
            context = b.new_context()
            page = context.new_page()
            errors = collect_errors(page)
            page.goto(url)
            page.wait_for_function("document.getElementById('out').textContent.startsWith('ready')", timeout=15000)
            assert page.text_content("#out") == "ready 42 genuine-page/1"
            assert page.evaluate("self.crossOriginIsolated") is True
            # ready: installed (cache filled) and active; controller: clients.claim() reached this page
            assert page.evaluate("navigator.serviceWorker.ready.then((r) => r.active !== null)")
            page.wait_for_function("navigator.serviceWorker.controller !== null", timeout=15000)

            server.shutdown()
            server.server_close()
            with pytest.raises(urllib.error.URLError):
                urllib.request.urlopen(url, timeout=5)
            with offline(context):
                response = page.reload()
                assert response is not None and response.from_service_worker
                page.wait_for_function("document.getElementById('out').textContent.startsWith('ready')",
                                       timeout=15000)
                assert page.text_content("#out") == "ready 42 genuine-page/1"
                # the cached responses keep COOP/COEP, so the offline page is still isolated
                assert page.evaluate("self.crossOriginIsolated") is True
            assert errors == []
            context.close()
    finally:
        server.shutdown()
        server.server_close()
