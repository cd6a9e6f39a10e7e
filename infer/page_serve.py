"""Serve a built page folder (SITE/, from `genuine page build`) on this machine, standard library only.

    from genuine.infer.page_serve import serve, run
    server, url = serve("SITE")          # a daemon thread, a free port: url is "http://127.0.0.1:PORT/"
    ...; server.shutdown(); server.server_close()
    run("SITE", "127.0.0.1", 8000)       # serves until Ctrl+C (`genuine page serve SITE`)

Every response carries COOP same-origin + COEP require-corp, so the page is crossOriginIsolated and
onnxruntime-web may use wasm threads (SharedArrayBuffer); Cache-Control no-cache, because the page's service worker
does the caching and a stale file beside a fresh site.json would mix two builds. Browsers allow service workers and
crossOriginIsolated only on https or localhost: serve on 127.0.0.1 (or behind https), not on a bare LAN address.
"""
from __future__ import annotations

import os
import sys
import threading
import urllib.parse
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

from genuine.infer.errors import UsageError

# By extension, never by the OS's mimetypes table (which differs between machines): a browser refuses to compile
# wasm streamed as anything but application/wasm, and refuses a module script served as octet-stream (nosniff).
MIME = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".wasm": "application/wasm",
    ".json": "application/json",
    ".webmanifest": "application/manifest+json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".onnx": "application/octet-stream",
    ".bin": "application/octet-stream",
}

HEADERS = {
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Embedder-Policy": "require-corp",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Cache-Control": "no-cache",
    "X-Content-Type-Options": "nosniff",
}


class SiteError(UsageError):
    """The folder is not a built page."""


def check_site(site) -> Path:
    """The site folder, resolved; SiteError when it lacks what every build writes."""
    root = Path(site).resolve()
    missing = [name for name in ("index.html", "site.json") if not (root / name).is_file()]
    if missing:
        raise SiteError(f"{site}: not a built page (no {' or '.join(missing)}); build one with "
                        f"`genuine page build MODEL.onnx --templates STORE.db --out {site}`")
    return root


class _Handler(SimpleHTTPRequestHandler):
    extensions_map: ClassVar[dict[str, str]] = {**SimpleHTTPRequestHandler.extensions_map, **MIME}
    verbose = False

    def send_head(self):
        # The base class drops ".." words after normpath, so "/a/../../x" would quietly become "/x": refuse any
        # such request outright, and anything that resolves (through a symlink) outside the site.
        raw = urllib.parse.urlsplit(self.path).path
        path = urllib.parse.unquote(raw)
        if ".." in path.split("/") or "\\" in path or "\0" in path or "%2f" in raw.lower():
            self.send_error(404)
            return None
        real = os.path.realpath(self.translate_path(self.path))
        if real != self.directory and not real.startswith(self.directory + os.sep):
            self.send_error(404)
            return None
        return super().send_head()

    def list_directory(self, path):
        self.send_error(404)   # no listings: a folder without index.html is not part of the page (send_head
        # returns this None: nothing more to send)

    def end_headers(self):
        for name, value in HEADERS.items():
            self.send_header(name, value)
        super().end_headers()

    def log_message(self, format, *args):
        if self.verbose:
            super().log_message(format, *args)


def serve(site, host: str = "127.0.0.1", port: int = 0, verbose: bool = False):
    """Start serving SITE in a daemon thread; returns (server, base url). port 0 picks a free port."""
    root = check_site(site)
    handler = partial(type("Handler", (_Handler,), {"verbose": verbose}), directory=str(root))
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    # a short poll: shutdown() waits for it (the default 0.5 s per server adds up over a test run)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="page-serve",
                     daemon=True).start()
    name = host if ":" not in host else f"[{host}]"
    return server, f"http://{name}:{server.server_address[1]}/"


def _forever():
    threading.Event().wait()   # the server runs in its thread; this one only waits for Ctrl+C


def main(args) -> int:
    """`genuine page serve SITE [--host] [--port]`."""
    return run(args.site, args.host, args.port)


def run(site, host: str = "127.0.0.1", port: int = 8000, verbose: bool = False) -> int:
    """Serve SITE until Ctrl+C."""
    server, url = serve(site, host, port, verbose)
    print(f"Serving {site} at {url} (Ctrl+C to stop)", flush=True)
    if host not in ("127.0.0.1", "localhost", "::1"):
        print("note: browsers run the page offline (service worker) only on https or localhost", file=sys.stderr)
    try:
        _forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.shutdown()
        server.server_close()
    return 0
