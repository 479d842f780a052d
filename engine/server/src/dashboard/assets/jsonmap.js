// Where each JSON pointer of a JSON text sits: the line of the member's key (or of the
// value, for array items and the root). Tolerant: on malformed input it keeps what it read.

const escapePart = (k) => k.replace(/~/g, '~0').replace(/\//g, '~1');

/** Map from JSON pointer to 1-based line, for `text`. */
export function pointerLines(text) {
  const lineStarts = [0];
  for (let i = 0; i < text.length; i += 1) if (text[i] === '\n') lineStarts.push(i + 1);
  const lineAt = (offset) => {
    let lo = 0, hi = lineStarts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (lineStarts[mid] <= offset) lo = mid; else hi = mid - 1;
    }
    return lo + 1;
  };
  const map = new Map();
  let i = 0;
  const ws = () => { while (i < text.length && /\s/.test(text[i])) i += 1; };
  const fail = () => { throw new SyntaxError(`unexpected input at ${i}`); };

  function string() {
    if (text[i] !== '"') fail();
    const start = i;
    i += 1;
    while (i < text.length && text[i] !== '"') i += text[i] === '\\' ? 2 : 1;
    if (i >= text.length) fail();
    i += 1;
    return JSON.parse(text.slice(start, i));
  }

  function value(ptr, at) {
    ws();
    if (!map.has(ptr)) map.set(ptr, lineAt(at ?? i));
    const c = text[i];
    if (c === '{') {
      i += 1; ws();
      if (text[i] === '}') { i += 1; return; }
      for (;;) {
        ws();
        const keyAt = i;
        const key = string();
        ws();
        if (text[i] !== ':') fail();
        i += 1;
        value(`${ptr}/${escapePart(key)}`, keyAt);
        ws();
        if (text[i] === ',') { i += 1; continue; }
        if (text[i] === '}') { i += 1; return; }
        fail();
      }
    } else if (c === '[') {
      i += 1; ws();
      if (text[i] === ']') { i += 1; return; }
      for (let n = 0; ; n += 1) {
        value(`${ptr}/${n}`);
        ws();
        if (text[i] === ',') { i += 1; continue; }
        if (text[i] === ']') { i += 1; return; }
        fail();
      }
    } else if (c === '"') {
      string();
    } else {
      const m = /^-?[0-9.eE+-]+|^true|^false|^null/.exec(text.slice(i, i + 64));
      if (!m) fail();
      i += m[0].length;
    }
  }

  try { value('', 0); } catch { /* keep what was read */ }
  return map;
}

/**
 * The line for `pointer` in `lines` (from pointerLines): its own, or that of the nearest
 * enclosing member that exists (a missing member is reported where it should go).
 */
export function lineOf(lines, pointer) {
  let p = pointer || '';
  for (;;) {
    if (lines.has(p)) return { line: lines.get(p), exact: p === (pointer || '') };
    if (!p) return { line: 1, exact: false };
    p = p.slice(0, p.lastIndexOf('/'));
  }
}
