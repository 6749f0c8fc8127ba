'use strict';
const http = require('http');

function createServer(cfg) {
  let requests = 0;
  return http.createServer((req, res) => {
    requests += 1;
    const send = (code, body) => {
      res.writeHead(code, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (req.url === '/health') return send(200, { status: 'ok', pid: process.pid, appEnv: cfg.appEnv });
    if (req.url === '/api/info') {
      return send(200, { appEnv: cfg.appEnv, nodeEnv: cfg.nodeEnv, logLevel: cfg.logLevel, database: cfg.database, pid: process.pid, requests });
    }
    return send(404, { error: 'not found' });
  });
}

module.exports = { createServer };
