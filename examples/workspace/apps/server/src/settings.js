'use strict';
// Every setting comes from the environment the orchestrator resolves for the profile.

function settings(env = process.env) {
  const missing = ['DATABASE_URL'].filter((k) => !env[k]);
  if (missing.length) throw new Error(`missing required settings: ${missing.join(', ')}`);
  const db = new URL(env.DATABASE_URL);
  return {
    port: Number(env.PORT || 3000),
    host: env.HOST || '127.0.0.1',
    appEnv: env.APP_ENV || 'development',
    nodeEnv: env.NODE_ENV || 'development',
    logLevel: env.LOG_LEVEL || 'info',
    // Only where the database is, never its credentials.
    database: { host: db.hostname, port: Number(db.port || 5432), name: db.pathname.replace(/^\//, '') },
    databaseUrl: env.DATABASE_URL,
  };
}

module.exports = { settings };
