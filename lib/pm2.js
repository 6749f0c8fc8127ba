'use strict';
// The PM2 seam: PM2's own programmatic API, promisified. No decisions here: the addon plans and
// carries the plan out, and calls back here for PM2's table and each PM2 call.

const path = require('path');

if (!process.env.PM2_SILENT) process.env.PM2_SILENT = 'true';

/** Finds PM2: the workspace's own copy first (it matches the workspace's `pm2` CLI), then ours. */
function locate(root) {
  for (const from of [root, __dirname]) {
    try {
      const pkg = require.resolve('pm2/package.json', { paths: [from] });
      return { dir: path.dirname(pkg), version: require(pkg).version };
    } catch (_) {
      /* next */
    }
  }
  return null;
}

function call(fn, ...args) {
  return new Promise((resolve, reject) => fn(...args, (err, res) => (err ? reject(err instanceof Error ? err : new Error(String(err && err.message ? err.message : err))) : resolve(res))));
}

/** PM2_HOME as PM2 resolves it. */
function home() {
  return process.env.PM2_HOME || path.join(process.env.HOME || require('os').homedir(), '.pm2');
}

/** Whether this PM2_HOME's daemon runs (without connecting, which would launch one). */
function daemonRunning() {
  try {
    const pid = Number(require('fs').readFileSync(path.join(home(), 'pm2.pid'), 'utf8'));
    process.kill(pid, 0);
    return true;
  } catch (_) {
    return false;
  }
}

class Pm2 {
  constructor(api, dir) {
    this.api = api;
    this.dir = dir;
  }

  static async connect(located) {
    // Our own client instance, not PM2's module-level singleton: a Node script that uses both
    // PM2 and this package keeps its connection when we disconnect ours.
    const API = require(located.dir).custom;
    const api = new API();
    await call(api.connect.bind(api), false);
    return new Pm2(api, located.dir);
  }

  /** One PM2 call the addon's plan makes (`Pm2Action`): resolves with `null`, or with PM2's
   * message when it failed (the addon makes the actionable error). */
  async act({ op, name, ids, app }) {
    const api = this.api;
    // By PM2 id when the addon has them: PM2's client looks a name up by reading its whole table.
    const each = async (fn) => {
      if (ids && ids.length) for (const id of ids) await call(fn, id);
      else await call(fn, name);
    };
    try {
      switch (op) {
        case 'start':
          await this.startFresh(app);
          break;
        case 'delete':
          await each(api.delete.bind(api));
          break;
        case 'stop':
          await each(api.stop.bind(api));
          break;
        case 'restart':
          if (app) await call(api.restart.bind(api), app);
          else await each(api.restart.bind(api));
          break;
        case 'reload':
          // The object form of `pm2 startOrReload ecosystem.config.js`: graceful reload with the
          // resolved env (PM2's CLI calls the same method; `reload()` accepts only file paths).
          await call(api._startJson.bind(api), app, {}, 'reloadProcessId');
          break;
        default:
          return `no PM2 call named ${op}`;
      }
      return null;
    } catch (e) {
      return e && e.message ? e.message : String(e);
    }
  }

  /** Starts an app PM2 does not have, as `start(app)` would (`_startJson`'s path for a name not
   * in the table: the same PM2 functions, in the same order, then its `prepare`), without the
   * whole-table read `_startJson` makes first to look the name up. The addon starts only names
   * its own read of the table found absent, under the workspace lock; at 70 app starts that
   * lookup read a table of up to 100 processes 70 times and took most of the start
   * (docs/benchmarks.md). __test__/pm2-start.spec.js holds this to PM2's own `start`. */
  async startFresh(app) {
    const api = this.api;
    const Common = require(path.join(this.dir, 'lib', 'Common.js'));
    const confs = Common.verifyConfs([{ ...app, env: { ...(app.env || {}) } }]);
    if (confs instanceof Error) throw confs;
    process.env.PM2_JSON_PROCESSING = 'true'; // as `_startJson` leaves it for the client's later calls
    const conf = confs[0];
    conf.env.io = conf.io;
    if (!conf.namespace) conf.namespace = 'default';
    conf.username = Common.getCurrentUsername();
    const resolved = Common.resolveAppAttributes({ cwd: api.cwd, pm2_home: api.pm2_home }, conf);
    if (!resolved.env) resolved.env = {};
    resolved.env.PM2_HOME = api.pm2_home;
    Object.assign(resolved.env, require(path.join(this.dir, 'lib', 'API', 'Modules', 'Modularizer.js')).getAdditionalConf(resolved.name));
    resolved.env = Common.mergeEnvironmentVariables(resolved, undefined, {});
    delete resolved.env.current_conf;
    resolved.km_link = api.gl_is_km_linked;
    const started = await call(api.Client.executeRemote.bind(api.Client), 'prepare', resolved);
    if (!started || started.length === 0) throw new Error(`PM2 could not load the configuration of ${app.name}`);
    return started;
  }

  /** `act` as the addon calls it (a plain function, never throwing). */
  actor() {
    return (action) => this.act(action);
  }

  async disconnect() {
    try {
      this.api.disconnect();
    } catch (_) {
      /* already closed */
    }
  }
}

module.exports = { Pm2, locate, daemonRunning, home };
