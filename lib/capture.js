'use strict';
// Log capture inside the app (installed by lib/preload.js, the `node --require` preload of every
// Node app the orchestrator starts under PM2). PM2's own log writer loses lines under a burst:
// its `reloadLogs` destroys the file stream with the writes still queued in it, and with
// `log_date_format` it drops the head of a line a pipe chunk cut in two (docs/faults.md). So the app's own stdout/stderr lines
// are written here instead: each line stamped as PM2 stamps them (`log_date_format`), appended
// with O_APPEND to the very files PM2 would write (`pm_out_log_path`, `pm_err_log_path`: per
// instance when PM2 keeps one per instance), synchronously — nothing queued, nothing to lose.
// When the agent renames a file to rotate it, the writer notices within 200 ms (or within a
// second when idle) that the path names another file, and opens the new one; the renamed file
// keeps what was written meanwhile, and is compressed once nobody holds it open.
//
// What does not go through `process.stdout.write` (a child process that inherited the pipe,
// native code writing to fd 1) still reaches PM2, which appends it to the same files. The lines
// are also sent to PM2's bus (what `pm2 logs` shows live) while the IPC channel keeps up; under
// a burst some are skipped there — the files are the record.

const fs = require('fs');
const path = require('path');

const pad = (n, w = 2) => String(n).padStart(w, '0');

/** `YYYY-MM-DDTHH:mm:ss.SSSZ` as dayjs formats it (local time, `+hh:mm` offset). */
function stamp(ms) {
  const d = new Date(ms);
  const off = -d.getTimezoneOffset();
  const a = Math.abs(off);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}${off >= 0 ? '+' : '-'}${pad(Math.floor(a / 60))}:${pad(a % 60)}`;
}

class Sink {
  constructor(file, topic) {
    this.file = file;
    this.topic = topic;
    this.fd = -1;
    this.ino = -1;
    this.checked = 0;
    this.partial = '';
    this.partialAt = 0;
    this.lastMs = -1;
    this.lastStamp = '';
    // Set once the file could not be written (said once, on the real stream).
    this.failed = false;
    this.open();
  }

  open() {
    fs.mkdirSync(path.dirname(this.file), { recursive: true });
    const fd = fs.openSync(this.file, 'a');
    const ino = fs.fstatSync(fd).ino;
    if (this.fd >= 0) fs.closeSync(this.fd);
    this.fd = fd;
    this.ino = ino;
  }

  /** Reopens when the path now names another file (renamed by a rotation) or none. */
  check(now, every) {
    if (now - this.checked < every) return;
    this.checked = now;
    let ino = -1;
    try {
      ino = fs.statSync(this.file).ino;
    } catch (_) {
      /* renamed away and not yet recreated */
    }
    if (ino !== this.ino) this.open();
  }

  prefix(now) {
    if (now !== this.lastMs) {
      this.lastMs = now;
      this.lastStamp = `${stamp(now)}: `;
    }
    return this.lastStamp;
  }

  emit(text) {
    const buf = Buffer.from(text);
    let off = 0;
    while (off < buf.length) off += fs.writeSync(this.fd, buf, off, buf.length - off);
    bus(this.topic, text);
  }

  write(text) {
    const now = Date.now();
    this.check(now, 200);
    const data = this.partial + text;
    const last = data.lastIndexOf('\n');
    if (last < 0) {
      if (!this.partial) this.partialAt = now;
      this.partial = data;
      return;
    }
    this.partial = data.slice(last + 1);
    if (this.partial) this.partialAt = now;
    const ts = this.prefix(now);
    this.emit(`${ts}${data.slice(0, last).replaceAll('\n', `\n${ts}`)}\n`);
  }

  /** A line without its end for a while (a prompt, a progress bar) is written as it is. */
  flush(now, olderThan) {
    if (this.partial && now - this.partialAt >= olderThan) {
      const line = this.partial;
      this.partial = '';
      this.emit(`${this.prefix(now)}${line}\n`);
    }
  }
}

let inflight = 0;
/** PM2's bus (live `pm2 logs`): best effort, never more than 64 messages queued on the channel. */
function bus(topic, data) {
  if (typeof process.send !== 'function' || !process.connected || inflight >= 64) return;
  inflight++;
  try {
    process.send({ type: topic, data }, () => inflight--);
  } catch (_) {
    inflight--;
  }
}

function install(env) {
  const sinks = [];
  for (const [name, file, topic] of [
    ['stdout', env.pm_out_log_path, 'log:out'],
    ['stderr', env.pm_err_log_path, 'log:err'],
  ]) {
    if (!file || file === '/dev/null' || /NULL/.test(file)) continue;
    const stream = process[name];
    const sink = new Sink(file, topic);
    sinks.push(sink);
    const write = function write(chunk, encoding, cb) {
      if (typeof encoding === 'function') {
        cb = encoding;
        encoding = undefined;
      }
      try {
        sink.write(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString(/** @type {BufferEncoding} */ (typeof encoding === 'string' && encoding !== 'buffer' ? encoding : 'utf8')));
      } catch (e) {
        // The log file cannot be written (disk full, permissions): say so once on the real
        // stream, which PM2 still captures.
        if (!sink.failed) {
          sink.failed = true;
          fs.writeSync(name === 'stdout' ? 1 : 2, `[orchestrator] cannot write ${sink.file}: ${e.message}\n`);
        }
      }
      if (cb) process.nextTick(cb);
      return true;
    };
    // PM2's cluster workers replace `write` with their own (which writes the same files): that
    // one is kept out, so every line is written once, here. Any other replacement (an app's own
    // wrapper, which calls the `write` it found: ours) is honoured.
    let outer = null;
    Object.defineProperty(stream, 'write', {
      configurable: true,
      enumerable: false,
      get: () => outer || write,
      set: (fn) => {
        if (!/[/\\]ProcessContainer\.js:/.test(new Error().stack || '')) outer = fn === write ? null : fn;
      },
    });
  }
  const timer = setInterval(() => {
    const now = Date.now();
    for (const s of sinks) {
      s.flush(now, 500);
      s.check(now, 1000);
    }
  }, 1000);
  timer.unref();
  process.on('exit', () => {
    for (const s of sinks) s.flush(Date.now(), 0);
  });
}

module.exports = { install };
