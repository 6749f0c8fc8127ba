'use strict';
const { settings } = require('./settings');
const { createServer } = require('./app');

const cfg = settings();
const server = createServer(cfg);
server.keepAliveTimeout = 2000;
server.listen(cfg.port, cfg.host, () => {
  console.log(`server listening on ${cfg.host}:${cfg.port} (APP_ENV=${cfg.appEnv}, pid ${process.pid})`);
});

// PM2 sends SIGINT on stop and on each step of a reload: finish in-flight requests, then exit.
let closing = false;
function shutdown(signal) {
  if (closing) return;
  closing = true;
  console.log(`server ${process.pid} received ${signal}, draining`);
  server.close(() => process.exit(0));
  server.closeIdleConnections?.();
  setTimeout(() => process.exit(0), 4000).unref();
}
process.on('SIGINT', () => shutdown('SIGINT'));
process.on('SIGTERM', () => shutdown('SIGTERM'));
