'use strict';
// Applies migrations/*.sql in name order, each once, in its own transaction, recorded in
// schema_migrations. Run by `nx run server:setup` (the package's `setup` script) with the
// profile's DATABASE_URL; a second run applies nothing.
const fs = require('fs');
const path = require('path');
const { Client } = require('pg');

// The profile's database may not exist yet: one Postgres serves every profile (app_development,
// app_staging, …) but initialises only the database it was first started with.
async function connect(url) {
  const client = new Client({ connectionString: url, connectionTimeoutMillis: 5000 });
  try {
    await client.connect();
    return client;
  } catch (e) {
    if (e.code !== '3D000') throw e;
    const name = new URL(url).pathname.slice(1);
    const admin = new URL(url);
    admin.pathname = '/postgres';
    const c = new Client({ connectionString: admin.toString(), connectionTimeoutMillis: 5000 });
    await c.connect();
    await c.query(`CREATE DATABASE "${name.replace(/"/g, '""')}"`);
    await c.end();
    console.log(`migrate: created database ${name}`);
    const again = new Client({ connectionString: url, connectionTimeoutMillis: 5000 });
    await again.connect();
    return again;
  }
}

async function main() {
  if (!process.env.DATABASE_URL) throw new Error('DATABASE_URL is not set');
  const dir = path.join(__dirname, '..', 'migrations');
  const files = fs.readdirSync(dir).filter((f) => f.endsWith('.sql')).sort();
  const client = await connect(process.env.DATABASE_URL);
  try {
    await client.query('CREATE TABLE IF NOT EXISTS schema_migrations (name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())');
    // One migrator at a time, whoever else runs setup.
    await client.query('SELECT pg_advisory_lock(4242)');
    const done = new Set((await client.query('SELECT name FROM schema_migrations')).rows.map((r) => r.name));
    let applied = 0;
    for (const f of files) {
      if (done.has(f)) continue;
      await client.query('BEGIN');
      try {
        await client.query(fs.readFileSync(path.join(dir, f), 'utf8'));
        await client.query('INSERT INTO schema_migrations (name) VALUES ($1)', [f]);
        await client.query('COMMIT');
      } catch (e) {
        await client.query('ROLLBACK');
        throw new Error(`migration ${f} failed: ${e.message}`);
      }
      console.log(`migrate: applied ${f}`);
      applied += 1;
    }
    console.log(`migrate: ${applied} applied, ${files.length - applied} already up to date`);
  } finally {
    await client.end();
  }
}

main().catch((e) => {
  console.error(`migrate: ${e.message}`);
  process.exit(1);
});
