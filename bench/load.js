'use strict';
// A steady HTTP load for the reload measurements (bench/supervision.js and the reload test in
// __test__/reload.spec.js): requests at a fixed rate, each either on a fresh connection or on
// one of a few keep-alive connections, counted as ok, failed (an error, a reset, a status other
// than 200) or hung (no answer within the client's timeout).
//
// The keep-alive style is what a load balancer or an API client does: a fixed set of persistent
// connections (here 10), each carrying its share of the requests one after another; a response
// that says `Connection: close` makes that connection open a new one for its next request.

const http = require('http');

/**
 * Starts the load against 127.0.0.1:`port`. `style`: `fresh` | `keepalive`. Resolves nothing;
 * `stop()` waits for what is in flight and resolves { sent, ok, failed, hung, errors }.
 */
function load({ port, perSecond = 200, style = 'fresh', timeoutMs = 3000, connections = 10, path = '/' }) {
  const counts = { sent: 0, ok: 0, failed: 0, hung: 0 };
  const errors = new Map();
  const pending = new Set();
  const noteError = (e) => errors.set(e, (errors.get(e) || 0) + 1);
  // One agent per keep-alive connection: exactly one socket each, reused while the server
  // keeps it open.
  const agents = style === 'keepalive' ? Array.from({ length: connections }, () => new http.Agent({ keepAlive: true, maxSockets: 1 })) : [];
  let next = 0;

  function one() {
    counts.sent++;
    const agent = style === 'keepalive' ? agents[next++ % agents.length] : false;
    const p = new Promise((resolve) => {
      let done = false;
      const finish = (kind, why) => {
        if (done) return;
        done = true;
        counts[kind]++;
        if (why) noteError(why);
        resolve();
      };
      const req = http.get({ host: '127.0.0.1', port, path, agent, timeout: timeoutMs }, (res) => {
        res.resume();
        res.on('end', () => (res.statusCode === 200 ? finish('ok') : finish('failed', `HTTP ${res.statusCode}`)));
        res.on('error', (e) => finish('failed', e.code || e.message));
      });
      // The timeout counts from the request's start, whatever the socket does meanwhile.
      const timer = setTimeout(() => {
        finish('hung', 'no answer within ' + timeoutMs + ' ms');
        req.destroy();
      }, timeoutMs);
      req.on('close', () => clearTimeout(timer));
      req.on('error', (e) => finish('failed', e.code || e.message));
    });
    pending.add(p);
    p.then(() => pending.delete(p));
  }

  const interval = 1000 / perSecond;
  const t0 = Date.now();
  let scheduled = 0;
  // Catch up on the schedule each tick, so a busy event loop does not lower the rate.
  const timer = setInterval(() => {
    const due = Math.floor((Date.now() - t0) / interval);
    while (scheduled < due) {
      scheduled++;
      one();
    }
  }, Math.max(1, Math.floor(interval)));

  return {
    counts,
    async stop() {
      clearInterval(timer);
      await Promise.all([...pending]);
      for (const a of agents) a.destroy();
      return { ...counts, errors: Object.fromEntries(errors) };
    },
  };
}

module.exports = { load };
