// The inspections made on this device (IndexedDB): nothing leaves the phone unless the officer exports it.
//
//   const h = await History.open();
//   await h.add({...result, photo_sha256, at});   await h.all();   h.csv(rows);   await h.clear();

const DB = "genuine-history", STORE = "inspections";

export async function sha256(blob) {   // the photo's sha256: the exported CSV names photos without carrying them
  const d = await crypto.subtle.digest("SHA-256", await blob.arrayBuffer());
  return Array.from(new Uint8Array(d), b => b.toString(16).padStart(2, "0")).join("");
}

function request(r) { return new Promise((ok, fail) => { r.onsuccess = () => ok(r.result); r.onerror = () => fail(r.error); }); }

export class History {
  static async open() {
    const r = indexedDB.open(DB, 1);
    r.onupgradeneeded = () => r.result.createObjectStore(STORE, { keyPath: "id", autoIncrement: true });
    return new History(await request(r));
  }
  constructor(db) { this.db = db; }
  store(mode) { return this.db.transaction(STORE, mode).objectStore(STORE); }
  add(row) { return request(this.store("readwrite").add(row)); }
  all() { return request(this.store("readonly").getAll()); }
  clear() { return request(this.store("readwrite").clear()); }
}

export const COLUMNS = ["at", "source", "photo_sha256", "verdict", "authenticity", "p_counterfeit", "product", "reason",
                        "model_sha256", "template", "detector", "total_ms"];

export function row(result, sha, at = new Date().toISOString()) {
  const r = result.rectification || {};
  return { at, source: result.source, photo_sha256: sha, verdict: result.verdict, authenticity: result.authenticity,
           p_counterfeit: result.p_counterfeit, product: result.product, reason: result.reason,
           model_sha256: result.model_sha256, template: r.template || null, detector: r.detector || null,
           total_ms: (result.timing_ms || {}).total ?? null, result };
}

// CSV as spreadsheets read it: every field quoted where it holds a comma, quote or newline; a leading = + - @
// is prefixed with ' so a file name cannot become a formula in the analyst's spreadsheet.
export function csv(rows) {
  const cell = (v) => {
    let s = v === null || v === undefined ? "" : String(v);
    if (/^[=+\-@]/.test(s) && isNaN(Number(s))) s = "'" + s;
    return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
  };
  return [COLUMNS.join(","), ...rows.map(r => COLUMNS.map(c => cell(r[c])).join(","))].join("\r\n") + "\r\n";
}
