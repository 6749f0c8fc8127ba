'use strict';
// `logs`: one addon call. The command line prints straight from the addon (a large window never
// becomes a JS array); the programmatic API gets the entries (all at once, or as an async
// iterator that pulls them in batches and can follow), or the raw window as Buffers.

const native = require('./native');
const { findRoot, loadEcosystem } = require('./workspace');
const { normalize } = require('./errors');

function request(opts) {
  const command = opts.command || 'orchestrator logs';
  const root = findRoot(opts.cwd || process.cwd());
  const { file, ecosystem } = loadEcosystem(root, command);
  const services = opts.services ? [].concat(opts.services) : opts.service ? [opts.service] : [];
  const str = (v) => (v === undefined || v === null || v === '' ? undefined : String(v));
  let tail;
  if (opts.tail !== undefined && opts.tail !== null && opts.tail !== '') {
    tail = Number(opts.tail);
    if (!Number.isInteger(tail) || tail < 0 || tail > 10_000_000) {
      const { make } = require('./errors');
      throw make('EXIT_USAGE', { command, message: `--tail must be a whole number of lines, not "${opts.tail}"`, remediation: ['Use --tail=100'] });
    }
  }
  return {
    workspaceRoot: root,
    services,
    ecosystem,
    ecosystemFile: file,
    since: str(opts.since),
    until: str(opts.until),
    tail,
    stream: str(opts.stream),
    grep: str(opts.grep),
    level: str(opts.level),
    command,
  };
}

/** The entries of a window (`{ time, service, stream, severity, line }`), in time order. */
async function logs(opts = {}) {
  try {
    return native.logs(request(opts));
  } catch (e) {
    throw normalize(e, { command: opts.command });
  }
}

/** The entries of a window as an async iterator, read from the files in batches (a large window
 * is never held whole). With `follow`, it then waits for new lines (across rotations) until the
 * loop breaks or `signal` aborts. */
async function* logStream(opts = {}) {
  let reader;
  try {
    reader = new native.LogReader(request(opts), Boolean(opts.follow));
  } catch (e) {
    throw normalize(e, { command: opts.command });
  }
  const batch = Number(opts.batch) > 0 ? Number(opts.batch) : 1000;
  const pollMs = Number(opts.pollMs) > 0 ? Number(opts.pollMs) : 200;
  const { setTimeout: sleep } = require('timers/promises');
  for (;;) {
    let got;
    try {
      got = reader.read(batch);
    } catch (e) {
      throw normalize(e, { command: opts.command });
    }
    for (const e of got) yield e;
    if (got.length > 0) continue;
    if (reader.done || opts.signal?.aborted) return;
    try {
      await sleep(pollMs, undefined, { signal: opts.signal });
    } catch {
      return; // aborted
    }
  }
}

/** The raw window, file by file in time order: `{ service, stream, file, compressed, start, end,
 * data }`, `data` a Buffer of the lines as written. Time window and streams only. */
function logSlice(opts = {}) {
  try {
    return native.logSlice(request(opts));
  } catch (e) {
    throw normalize(e, { command: opts.command });
  }
}

/** Prints the window to stdout; returns how many entries. */
function print(opts = {}) {
  try {
    return native.printLogs(request(opts), Boolean(opts.json));
  } catch (e) {
    throw normalize(e, { command: opts.command });
  }
}

/** `--follow`: prints the window's start, then new lines as they are written (across
 * rotations) until the process is stopped. */
async function follow(opts = {}) {
  try {
    return await native.followLogs(request(opts), Boolean(opts.json));
  } catch (e) {
    throw normalize(e, { command: opts.command });
  }
}

module.exports = { logs, logStream, logSlice, print, follow };
