'use strict';
const { settings } = require('./settings');
const { createServer } = require('./app');

const cfg = settings();
const server = createServer(cfg);
server.keepAliveTimeout = 2000;
server.listen(cfg.port, cfg.host, () => {
  console.log(`server listening on ${cfg.host}:${cfg.port} (APP_ENV=${cfg.appEnv}, pid ${process.pid})`);
});

// PM2 sends SIGINT on stop and on each step of a reload. Stop accepting (the cluster master then
// sends new connections to the other workers), let in-flight requests finish, and stay alive a
// moment longer so a connection the master handed over just before it saw the close is refused
// back to it (and redistributed) rather than lost with this process.
let closing = false;
function shutdown(signal) {
  if (closing) return;
  closing = true;
  console.log(`server ${process.pid} received ${signal}, draining`);
  server.close(() => setTimeout(() => process.exit(0), 1000));
  setTimeout(() => process.exit(0), 4000).unref();
}
process.on('SIGINT', () => shutdown('SIGINT'));
process.on('SIGTERM', () => shutdown('SIGTERM'));
