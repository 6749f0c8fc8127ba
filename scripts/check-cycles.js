#!/usr/bin/env node
'use strict';
// The module graph of each Rust crate has no cycles (the crates themselves cannot have any: Cargo
// refuses a cycle between packages). In each crate's src/ (the binding's src/, crates/core/src,
// crates/runtime/src, crates/supervisor/src) every module (a file, or a directory's mod.rs) is a node; a reference from its production code (`crate::a::b`,
// `super::x`, `self::x`, `use` lines included) to another module is an edge. Test modules
// (`#[cfg(test)]` to the end of the file, and files only compiled for tests) are left out: a test
// may use any module to build its fixtures without that being part of the layering. Prints the
// cycles and exits 1 when there are any.
const fs = require('fs');
const path = require('path');

const ROOT = path.join(__dirname, '..');
const CRATES = ['src', 'crates/core/src', 'crates/runtime/src', 'crates/supervisor/src'];

/** The source without its inline test modules (`#[cfg(test)] mod tests { … }`, braces
 * matched; strings and comments are not parsed, which the code's test modules do not need). */
function withoutTests(text) {
  let out = text;
  for (;;) {
    const m = /#\[cfg\(test\)\]\s*mod [a-z_0-9]+\s*\{/.exec(out);
    if (!m) return out;
    let depth = 0;
    let end = out.length;
    for (let i = m.index + m[0].length - 1; i < out.length; i++) {
      if (out[i] === '{') depth++;
      else if (out[i] === '}' && --depth === 0) {
        end = i + 1;
        break;
      }
    }
    out = out.slice(0, m.index) + out.slice(end);
  }
}

/** Every module: its path (`logs::scan`) → its production source. */
function modules(SRC) {
  const out = new Map();
  const walk = (dir, prefix) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, e.name);
      if (e.isDirectory()) walk(full, [...prefix, e.name]);
      else if (e.name.endsWith('.rs')) {
        const stem = e.name.slice(0, -3);
        const parts = stem === 'mod' || (stem === 'lib' && prefix.length === 0) ? prefix : [...prefix, stem];
        const text = fs.readFileSync(full, 'utf8');
        out.set(parts.join('::'), withoutTests(text));
      }
    }
  };
  walk(SRC, []);
  // Files declared only under #[cfg(test)] (e.g. `#[cfg(test)] mod parsers_never_panic;`).
  for (const [name, text] of [...out]) {
    for (const m of text.matchAll(/#\[cfg\(test\)\]\s*(?:pub )?mod ([a-z_0-9]+);/g)) out.delete(name ? `${name}::${m[1]}` : m[1]);
  }
  out.delete('');
  return out;
}

/** The longest module path that `segments` starts with. */
function resolve(mods, segments) {
  for (let n = segments.length; n > 0; n--) {
    const p = segments.slice(0, n).join('::');
    if (mods.has(p)) return p;
  }
  return null;
}

function edges(mods) {
  const graph = new Map([...mods.keys()].map((m) => [m, new Set()]));
  for (const [name, text] of mods) {
    const here = name.split('::');
    const code = text.replace(/\/\/.*$/gm, '');
    const add = (segs) => {
      const to = resolve(mods, segs);
      if (to && to !== name && !name.startsWith(`${to}::`)) graph.get(name).add(to);
      // A child naming its own ancestor's items depends on that ancestor too.
      if (to && name.startsWith(`${to}::`) && segs.length > to.split('::').length && !mods.has(segs.slice(0, to.split('::').length + 1).join('::'))) graph.get(name).add(to);
    };
    for (const m of code.matchAll(/\bcrate::((?:[a-z_0-9]+::)*[A-Za-z_0-9]+)/g)) add(m[1].split('::'));
    // `use crate::{a, b::c}` groups.
    for (const m of code.matchAll(/\buse crate::\{([^}]*)\}/g)) for (const p of m[1].split(',')) p.trim() && add(p.trim().split('::'));
    // A path relative to this module: its own submodules (`use scan::Cursor`, `files::classify`).
    for (const m of code.matchAll(/(?<![:\w])((?:[a-z_0-9]+::)+(?:[A-Za-z_0-9]+|\*|\{))/g)) {
      const segs = m[1].split('::').filter((x) => x !== '*' && x !== '{');
      if (['crate', 'super', 'self', 'std', 'core'].includes(segs[0])) continue;
      if (mods.has([...here, segs[0]].filter(Boolean).join('::'))) add([...here, ...segs].filter(Boolean));
    }
    for (const m of code.matchAll(/\bsuper::((?:[a-z_0-9]+::)*[A-Za-z_0-9]+)/g)) {
      const parent = here.slice(0, -1);
      add([...parent, ...m[1].split('::')]);
    }
    for (const m of code.matchAll(/\buse super::\{([^}]*)\}/g)) {
      const parent = here.slice(0, -1);
      for (const p of m[1].split(',')) p.trim() && add([...parent, ...p.trim().split('::')]);
    }
  }
  return graph;
}

/** Tarjan's strongly connected components of size > 1. */
function cycles(graph) {
  let index = 0;
  const idx = new Map();
  const low = new Map();
  const stack = [];
  const on = new Set();
  const out = [];
  const strong = (v) => {
    idx.set(v, index);
    low.set(v, index++);
    stack.push(v);
    on.add(v);
    for (const w of graph.get(v)) {
      if (!idx.has(w)) {
        strong(w);
        low.set(v, Math.min(low.get(v), low.get(w)));
      } else if (on.has(w)) low.set(v, Math.min(low.get(v), idx.get(w)));
    }
    if (low.get(v) === idx.get(v)) {
      const comp = [];
      let w;
      do {
        w = stack.pop();
        on.delete(w);
        comp.push(w);
      } while (w !== v);
      if (comp.length > 1) out.push(comp.sort());
    }
  };
  for (const v of graph.keys()) if (!idx.has(v)) strong(v);
  return out;
}

let failed = false;
let total = 0;
for (const dir of CRATES) {
  const mods = modules(path.join(ROOT, dir));
  total += mods.size;
  const graph = edges(mods);
  const found = cycles(graph);
  if (!found.length) continue;
  failed = true;
  console.error(`check-cycles: ${found.length} module cycle(s) in ${dir}/ (production code):`);
  for (const c of found) {
    const inside = c.map((m) => `${m} → ${[...graph.get(m)].filter((t) => c.includes(t)).join(', ')}`);
    console.error(`  - ${c.join(', ')}\n      ${inside.join('\n      ')}`);
  }
}
if (failed) {
  console.error('  Move what both sides need into a module below them (docs/architecture.md, "Layers").');
  process.exit(1);
}
console.log(`check-cycles: ${CRATES.length} crates, ${total} modules, no cycles`);
