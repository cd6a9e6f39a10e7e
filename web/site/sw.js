// The service worker: the whole site cached at install (files.json lists it), served from the cache first, so the
// page inspects with no network at all. `genuine page build` writes the site's version below: a rebuilt site is a
// new worker, which caches the new files and drops the old cache once it takes over (README: updating handhelds).
// Responses get COOP/COEP headers, so the page is cross-origin isolated (wasm threads) on any static host.
const VERSION = "__VERSION__";
const CACHE = `genuine-${VERSION}`;

self.addEventListener("install", (event) => {
  event.waitUntil((async () => {
    const files = await (await fetch("files.json", { cache: "no-store" })).json();
    const cache = await caches.open(CACHE);
    await cache.addAll(files.map(f => new Request(f, { cache: "no-store" })));
    await self.skipWaiting();
  })());
});

self.addEventListener("activate", (event) => {
  event.waitUntil((async () => {
    for (const k of await caches.keys()) if (k.startsWith("genuine-") && k !== CACHE) await caches.delete(k);
    await self.clients.claim();
  })());
});

function isolated(response) {
  if (!response || response.status === 0 || response.type === "opaque") return response;
  const headers = new Headers(response.headers);
  headers.set("Cross-Origin-Opener-Policy", "same-origin");
  headers.set("Cross-Origin-Embedder-Policy", "require-corp");
  return new Response(response.body, { status: response.status, statusText: response.statusText, headers });
}

self.addEventListener("fetch", (event) => {
  const url = new URL(event.request.url);
  if (event.request.method !== "GET" || url.origin !== self.location.origin) return;
  event.respondWith((async () => {
    const cache = await caches.open(CACHE);
    const hit = await cache.match(event.request, { ignoreSearch: true });
    if (hit) return isolated(hit);
    try { return isolated(await fetch(event.request)); }
    catch (e) { return new Response(`offline and not cached: ${url.pathname}`, { status: 504 }); }
  })());
});
