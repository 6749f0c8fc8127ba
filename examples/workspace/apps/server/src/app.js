'use strict';
const http = require('http');
const { Pool } = require('pg');

// /health says whether the database answers; it stays 200 so the API itself counts as up while
// its database restarts (the orchestrator starts postgres first and waits for it).
function databaseProbe(cfg) {
  let pool;
  return async () => {
    pool ??= new Pool({ connectionString: cfg.databaseUrl, max: 1, connectionTimeoutMillis: 1000, idleTimeoutMillis: 5000 });
    try {
      const r = await pool.query("SELECT count(*)::int AS n FROM information_schema.tables WHERE table_name = 'schema_migrations'");
      return { database: 'reachable', migrated: r.rows[0].n === 1 };
    } catch (e) {
      return { database: 'unreachable', databaseError: e.code || e.message };
    }
  };
}

function createServer(cfg) {
  let requests = 0;
  const probe = databaseProbe(cfg);
  return http.createServer(async (req, res) => {
    requests += 1;
    const send = (code, body) => {
      res.writeHead(code, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (req.url === '/health') return send(200, { status: 'ok', pid: process.pid, appEnv: cfg.appEnv, ...(await probe()) });
    if (req.url === '/api/info') {
      return send(200, { appEnv: cfg.appEnv, nodeEnv: cfg.nodeEnv, logLevel: cfg.logLevel, database: cfg.database, pid: process.pid, requests });
    }
    return send(404, { error: 'not found' });
  });
}

module.exports = { createServer };
