'use strict';
// The container runner: the process PM2 supervises for a docker dependency. The Docker work is
// the addon's: it makes the container run (adopting one `start` already created), copies the
// container's stdout/stderr to ours (so `pm2 logs <service>` shows them, separated), and
// resolves with the container's exit code when it stops. SIGINT/SIGTERM (pm2 stop/restart/delete)
// stop the container gracefully and exit 0; a container that dies on its own makes us exit with
// its code, so PM2 sees the crash.

const native = require('./native');

const spec = process.env.ORCHESTRATOR_CONTAINER;
const service = process.env.ORCHESTRATOR_SERVICE || 'dependency';
// Our own lines in the service's error.log start with a UTC timestamp, like the container's.
// They go through the addon's sink, as the container's lines do (PM2's files for the runner are
// /dev/null: PM2's writer drops queued lines at a rotation), and to stderr for PM2's bus.
const say = (text) => native.runnerSay(`${new Date().toISOString()} [orchestrator] ${service}: ${text}\n`);
// A crash of the runner itself is recorded where its operator will look.
process.on('uncaughtException', (e) => {
  say(`runner crashed: ${e && e.stack ? e.stack : e}`);
  process.exit(1);
});

/** Says why the runner stops and exits with the error's number (the agent reads a refusal
 * restarting cannot fix from it: image unavailable, env missing, port held). */
function fail(e) {
  const { OrchestratorError } = require('./errors');
  if (e instanceof OrchestratorError) {
    say(`${e.code} (${e.exitCode}): ${e.message}\n  - ${e.remediation.join('\n  - ')}`);
    process.exit(e.exitCode || 1);
  }
  say(e && e.message ? e.message : String(e));
  process.exit(1);
}

if (!spec) fail(new Error('ORCHESTRATOR_CONTAINER is not set: the runner is started by `orchestrator start`, not by hand'));

let stopping = null;
function stop(signal) {
  if (stopping) return;
  say(`${signal}, stopping the container`);
  stopping = native.stopContainer(spec).catch(fail);
}
process.on('SIGINT', () => stop('SIGINT'));
process.on('SIGTERM', () => stop('SIGTERM'));

native.runContainer(spec).then(async (code) => {
  if (stopping || code === null) {
    await stopping;
    process.exit(0);
  }
  say(`container exited with code ${code}`);
  process.exit(code === 0 ? 0 : code > 0 && code < 256 ? code : 1);
}, fail);
