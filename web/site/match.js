// Nearest ORB descriptors by locality-sensitive hashing, for the page's rectification. OpenCV.js's brute-force
// Hamming matcher takes 0.8 s for 3000 photo keypoints against one template's 6000 in wasm (bench/page.py): too slow
// for a handheld with a dozen products. Each template's descriptors are hashed once into TABLES tables keyed by BITS
// of their 256 bits (fixed positions from a fixed seed: the same photo, the same matches); a photo keypoint is
// compared only with the descriptors sharing a key in some table. A true match differing in 30 bits shares a
// 12-bit key with probability 0.22 per table, so 16 tables find it 98% of the time; about 25 candidates per query
// for a 6000-keypoint template. Python's matcher (FLANN KD-trees over SIFT) is approximate in the same way.
//
//   const index = new HammingIndex(descBytes, n);          // a template's ORB descriptors, n x 32 bytes
//   const keys = queryKeys(photoWords, m);                 // once per photo: the same keys serve every template
//   const [best, d0, second, d1] = index.knn2(photoWords, i, keys);   // photoWords = words(photoDescBytes)

export const TABLES = 16, BITS = 12, SEED = 0x6e75;   // infer/orb.py's; site.json constants.lsh is checked against them

export function words(bytes) {   // n x 32 bytes -> n x 8 uint32 (little-endian, as the bytes lie)
  const b = bytes.byteOffset % 4 === 0 ? bytes : bytes.slice();
  return new Uint32Array(b.buffer, b.byteOffset, b.length >> 2);
}

export function popcount(x) {
  x -= (x >>> 1) & 0x55555555;
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  return (Math.imul((x + (x >>> 4)) & 0x0f0f0f0f, 0x01010101) >>> 24);
}

function positions(seed) {   // TABLES x BITS bit positions out of 256, from a small LCG: deterministic everywhere
  let s = seed >>> 0;
  const next = () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0);
  return Array.from({ length: TABLES }, () => Array.from({ length: BITS }, () => next() % 256));
}
const POS = positions(SEED);

function key(w, base, pos) {
  let k = 0;
  for (let b = 0; b < BITS; b++) { const p = pos[b]; k = (k << 1) | ((w[base + (p >>> 5)] >>> (p & 31)) & 1); }
  return k;
}

// Every table's key of each of m query descriptors (TABLES x m): the bit positions are the same for all templates,
// so a photo's keys are computed once, not once per template (with 300 identification views, most of the time).
export function queryKeys(qw, m) {
  const keys = new Int32Array(TABLES * m);
  for (let t = 0; t < TABLES; t++) for (let i = 0; i < m; i++) keys[t * m + i] = key(qw, 8 * i, POS[t]);
  return keys;
}

export class HammingIndex {
  constructor(descBytes, n) {
    this.n = n;
    this.w = words(descBytes);
    this.stamp = new Int32Array(n).fill(-1);
    this.tables = POS.map(pos => {   // counting sort of the descriptors by their key: offsets + items
      const keys = new Int32Array(n), start = new Int32Array((1 << BITS) + 1);
      for (let i = 0; i < n; i++) { keys[i] = key(this.w, 8 * i, pos); start[keys[i] + 1]++; }
      for (let k = 0; k < 1 << BITS; k++) start[k + 1] += start[k];
      const fill = start.slice(0, -1), items = new Int32Array(n);
      for (let i = 0; i < n; i++) items[fill[keys[i]]++] = i;
      return { pos, start, items };
    });
    this.query = 0;
  }

  // [index of the nearest, its distance, index of the second nearest, its distance] among the candidates of
  // photo descriptor i (qw: the photo's words, keys: queryKeys(qw, m)); -1 / 257 where there are fewer than two.
  knn2(qw, i, keys) {
    const q = ++this.query, base = 8 * i, w = this.w, m = keys.length / TABLES;
    let b0 = -1, d0 = 257, b1 = -1, d1 = 257;
    for (let ti = 0; ti < TABLES; ti++) {
      const t = this.tables[ti], k = keys[ti * m + i];
      for (let j = t.start[k]; j < t.start[k + 1]; j++) {
        const c = t.items[j];
        if (this.stamp[c] === q) continue;
        this.stamp[c] = q;
        let d = 0;
        for (let x = 0; x < 8; x++) d += popcount(qw[base + x] ^ w[8 * c + x]);
        if (d < d0) { b1 = b0; d1 = d0; b0 = c; d0 = d; } else if (d < d1) { b1 = c; d1 = d; }
      }
    }
    return [b0, d0, b1, d1];
  }
}
