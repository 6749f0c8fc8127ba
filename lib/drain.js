'use strict';
// Graceful shutdown inside every Node app the orchestrator starts (loaded by lib/preload.js), so
// that a stop, a restart and above all a cluster reload lose no request, whether or not the app
// handles signals itself.
//
// What loses requests without it (PM2 6 and 7 alike, docs/reload.md):
// - An app with no SIGINT handler dies at once: its in-flight requests are reset.
// - In cluster mode PM2's daemon is the master: it accepts each connection and hands it to a
//   worker over IPC (Node's round-robin). A worker that exits while a handoff to it is still in
//   the pipe takes the connection with it: the master keeps it ESTABLISHED, unread, forever.
// - Node's `server.close()` destroys idle keep-alive connections at once; a client that sent its
//   next request on one at that moment gets a reset.
//
// The drain, on PM2's kill signal (SIGINT unless `kill_signal` says otherwise) or its `shutdown`
// message:
// 1. Stop accepting: every listening server of the process is closed (after the app's own signal
//    handlers ran, so an app that closes its server itself is not told "not running"). In a
//    cluster worker this takes the worker out of the master's round-robin.
// 2. Stay alive while handoffs may still be on their way: Node's cluster code answers a handoff
//    that arrives after the close with "not accepted", and the master gives the connection to
//    another worker. The worker stays until no handoff arrived for a while.
// 3. Finish in-flight requests. Every response sent while draining says `Connection: close`, so
//    a keep-alive client moves to a new connection (the new worker) after its next request
//    instead of racing a close. Idle keep-alive connections stay open for that next request;
//    one idle for a second is closed. Upgraded connections (WebSockets) are closed at once:
//    their clients reconnect.
// 4. Exit: the app's own `process.exit()` waits until then; an app without a handler of its own
//    exits by the same signal it would have died of. Whatever is left is closed shortly before
//    PM2's `kill_timeout`, so PM2 never needs its SIGKILL.

const net = require('net');

/** Every listening server of the process → its connections and their activity. */
/** @type {Map<import('net').Server, Map<import('net').Socket, { busy: number, idleSince: number, upgraded: boolean }>>} */
const servers = new Map();
let draining = false;
let startedAt = 0;
let lastHandoff = 0;
let waiters = [];

const SETTLE_MS = 300; // after the close, how long to stay for handoffs still in the pipe
const QUIET_MS = 100; // …and how long no handoff must have arrived
const IDLE_MS = 1000; // an idle keep-alive connection gets this long to carry one more request

function killTimeout(env) {
  const n = Number(env.kill_timeout ?? process.env.kill_timeout);
  return Number.isFinite(n) && n > 0 ? n : 1600; // PM2's default
}

/** Every listening server is tracked with its connections and their activity. */
function trackServers() {
  const listen = net.Server.prototype.listen;
  net.Server.prototype.listen = function orchestratorListen(...args) {
    if (!servers.has(this)) {
      const sockets = new Map();
      servers.set(this, sockets);
      // A server that closed (and whose connections all ended) is forgotten.
      this.once('close', () => servers.delete(this));
      this.on('connection', (socket) => {
        sockets.set(socket, { busy: 0, idleSince: Date.now(), upgraded: false });
        socket.once('close', () => {
          sockets.delete(socket);
          check();
        });
      });
      if (typeof (/** @type {any} */ (this).closeIdleConnections) === 'function') {
        // An HTTP server: a request makes its connection busy until its response is done.
        this.prependListener('request', (req, res) => {
          const s = sockets.get(req.socket) || sockets.get(req.socket && req.socket._parent);
          if (s) s.busy++;
          if (draining && !res.headersSent) res.setHeader('Connection', 'close');
          res.once('close', () => {
            if (s) {
              s.busy--;
              s.idleSince = Date.now();
            }
            check();
          });
        });
        this.prependListener('upgrade', (req) => {
          const s = sockets.get(req.socket);
          if (s) s.upgraded = true;
          if (draining) req.socket.destroy();
        });
      }
    }
    return listen.apply(this, args);
  };
  // While draining, Node's `server.close()` must not destroy idle keep-alive connections
  // (a client may be sending on one): the drain closes them when it is safe.
  const http = require('http');
  const closeIdle = http.Server.prototype.closeIdleConnections;
  if (typeof closeIdle === 'function') {
    http.Server.prototype.closeIdleConnections = function orchestratorCloseIdle(...args) {
      if (draining && servers.has(this)) return undefined;
      return closeIdle.apply(this, args);
    };
  }
}

/** Connections still open on our servers. */
function openConnections() {
  let n = 0;
  for (const sockets of servers.values()) n += sockets.size;
  return n;
}

/** Closes what may be closed now: idle connections past their grace, upgraded ones. */
function sweep(now) {
  for (const sockets of servers.values()) {
    for (const [socket, s] of sockets) {
      if (s.upgraded || (s.busy === 0 && now - s.idleSince >= IDLE_MS)) socket.destroy();
    }
  }
}

function settled(now) {
  return now - startedAt >= SETTLE_MS && now - lastHandoff >= QUIET_MS && openConnections() === 0;
}

function check() {
  if (!draining) return;
  const now = Date.now();
  if (!settled(now)) return;
  const ready = waiters;
  waiters = [];
  for (const w of ready) w();
}

/** Resolves once the drain is complete (or its deadline passed). */
function drained() {
  return new Promise((resolve) => {
    waiters.push(resolve);
    check();
  });
}

function begin(env, onDone) {
  if (draining) return;
  draining = true;
  startedAt = Date.now();
  const deadline = Math.max(500, killTimeout(env) - 250);
  // After the app's own handlers for this signal ran: close the listeners still open.
  setImmediate(() => {
    for (const server of servers.keys()) {
      if (server.listening) net.Server.prototype.close.call(server);
    }
    sweep(Date.now());
  });
  const tick = setInterval(() => {
    sweep(Date.now());
    check();
  }, 50);
  const hard = setTimeout(() => {
    for (const sockets of servers.values()) for (const socket of sockets.keys()) socket.destroy();
    lastHandoff = 0;
    startedAt = 0;
    const ready = waiters;
    waiters = [];
    for (const w of ready) w();
  }, deadline);
  drained().then(() => {
    clearInterval(tick);
    clearTimeout(hard);
    onDone();
  });
}

function install(env) {
  trackServers();
  // A handoff from the cluster master (Node's internal `newconn` message) on its way in.
  process.on('internalMessage', (m) => {
    if (m && m.cmd === 'NODE_CLUSTER' && m.act === 'newconn') lastHandoff = Date.now();
  });
  // The app's own `process.exit()` while draining waits for the drain.
  const exit = process.exit;
  let exiting = false;
  /** @type {any} */ (process).exit = function orchestratorExit(/** @type {number | undefined} */ code) {
    if (!draining || exiting) return exit.call(process, code);
    exiting = true;
    if (code !== undefined) process.exitCode = code;
    drained().then(() => exit.call(process));
    return undefined;
  };
  const signal = /** @type {NodeJS.Signals} */ (String(env.kill_signal || 'SIGINT'));
  // Listeners that were there before the app's own code ran are not the app's: PM2's injected
  // @pm2/io, for one, listens through signal-exit, which lets the process die of the signal
  // unless someone else listens. The app's main module is loaded with `isMain` (PM2's
  // containers and Node alike): the listeners then present are noted.
  /** @type {any} */
  const Module = require('module');
  const load = Module._load;
  /** @type {Set<Function> | null} */
  let before = null;
  Module._load = function orchestratorLoad(request, parent, isMain) {
    if (isMain && before === null) {
      before = new Set(process.listeners(/** @type {NodeJS.Signals} */ (signal)));
      Module._load = load;
    }
    return load.apply(this, arguments);
  };
  const onSignal = () => {
    begin(env, () => {
      process.removeListener(signal, onSignal);
      // The app handles this signal itself: it decides when to exit (its exit waited for us).
      if (process.listeners(signal).some((l) => !before || !before.has(l))) return;
      // No handler of its own: end as the signal would have ended it (kept alive meanwhile: a
      // listener from before, signal-exit's, receives it on the event loop and re-raises it).
      setTimeout(() => {}, 1000);
      process.kill(process.pid, signal);
    });
  };
  try {
    process.on(signal, onSignal);
  } catch (_) {
    return; // not a signal this platform knows
  }
  // PM2's `shutdown_with_message`: the same drain, then exit. (Only then: a `message` listener
  // keeps the IPC channel, and so the process, alive.)
  if (String(env.shutdown_with_message) === 'true') {
    process.on('message', (m) => {
      if (m === 'shutdown') begin(env, () => exit.call(process, process.exitCode ?? 0));
    });
  }
}

module.exports = { install };
