'use strict';
// The preload of every Node app the orchestrator starts under PM2 (`node --require` through the
// app's `node_args`, added at launch by the addon: `orchestrator_core::pm2::with_preload`, which
// says which apps PM2 runs with Node). Before the app's code runs it:
// - removes the variables PM2 still holds for the app that its current env does not have
//   (`ORCHESTRATOR_UNSET`: PM2 merges a reload's env into the old one, so a variable only the
//   previous profile had would stay);
// - makes the app write its own log lines (lib/capture.js);
// - makes its shutdown graceful, so a stop, restart or cluster reload loses no request
//   (lib/drain.js).
// Only as a preload (`require.main` is not set yet) in a process PM2 started for us: a child of
// the app that requires the orchestrator's API inherits the env but is left alone.

/** PM2's settings for this process: its env in fork mode; in a cluster worker, the `pm2_env`
 * JSON that PM2's ProcessContainer unpacks into the env only after the preloads ran. */
function pm2Env() {
  if (process.env.pm2_env) {
    try {
      const e = JSON.parse(process.env.pm2_env);
      return { ...e, ...(e.env || {}) };
    } catch (_) {
      /* not PM2's */
    }
  }
  return process.env;
}

/** Removes `ORCHESTRATOR_UNSET`'s variables from the env the app will see: the process's own,
 * and in a cluster worker the `pm2_env` JSON PM2's ProcessContainer copies into it. */
function unsetStale(env) {
  const names = String(env.ORCHESTRATOR_UNSET || '').split(',').filter(Boolean);
  if (!names.length) return;
  for (const k of names) delete process.env[k];
  if (process.env.pm2_env) {
    try {
      const e = JSON.parse(process.env.pm2_env);
      for (const k of names) {
        delete e[k];
        if (e.env) delete e.env[k];
      }
      process.env.pm2_env = JSON.stringify(e);
    } catch (_) {
      /* not PM2's */
    }
  }
}

if (require.main === undefined && !global.__orchestratorPreload) {
  const env = pm2Env();
  if (String(env.ORCHESTRATOR_CAPTURE) === '1') {
    global.__orchestratorPreload = true;
    unsetStale(env);
    if (env.pm_out_log_path) require('./capture').install(env);
    require('./drain').install(env);
  }
}
