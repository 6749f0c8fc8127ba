'use strict';
// The workspace agent: one PM2-supervised process per workspace (started by any start command,
// stopped by stop-all). It owns the restart policy of every service we manage (their PM2
// autorestart is off, so there is one policy, ours): PM2's bus reports exits, the addon decides
// (`agentExit`, and an `AgentWatch` for what takes more than one look: which exits to answer,
// when PM2 may reopen its logs; records written atomically under .orchestrator/state, events to
// apps/logs/<service>/events.jsonl), and this file subscribes to the bus and carries out the
// decisions through PM2's API. It opens no network port: PM2's bus and RPC are unix sockets in
// PM2_HOME.

const native = require('./native');
const { Pm2, locate, home } = require('./pm2');

const root = process.env.ORCHESTRATOR_WORKSPACE;
const RECONCILE_MS = 2000;
// Rotation looks every 2 s (daily at the first look after UTC midnight, and by size).
const ROTATE_MS = 2000;

function log(msg) {
  process.stdout.write(`${new Date().toISOString()} ${msg}\n`);
}

if (!root) {
  process.stderr.write('[orchestrator-agent] ORCHESTRATOR_WORKSPACE is not set: the agent is started by `orchestrator start`\n');
  process.exit(2);
}

let pm2 = null;
/** @type {Promise<unknown>} */
let queue = Promise.resolve();
let wakeTimer = null;
const watch = new native.AgentWatch();

/** One thing at a time: exits, ticks and restarts never interleave. */
function enqueue(fn) {
  queue = queue.then(fn).catch((e) => process.stderr.write(`${new Date().toISOString()} ${e && e.stack ? e.stack : e}\n`));
  return queue;
}

const ours = (p) => p.workspace === root && p.kind !== 'agent';

function logEvents(events) {
  for (const e of events) log(`${e.service}: ${e.event}${e.delayMs !== undefined ? ` in ${e.delayMs} ms` : ''}${e.code ? ` (${e.code})` : ''}`);
}

function onExit(p) {
  if (p.ORCHESTRATOR_WORKSPACE !== root || p.ORCHESTRATOR_KIND === 'agent') return undefined;
  if (String(p.pm_id).startsWith('_old_')) return undefined; // a worker replaced by a reload
  // The process as the event describes it, in the shape of `pm2.list()`'s entries.
  const exited = {
    name: p.name,
    pmId: Number(p.pm_id),
    status: String(p.status || ''),
    workspace: p.ORCHESTRATOR_WORKSPACE,
    profile: p.ORCHESTRATOR_PROFILE,
    kind: p.ORCHESTRATOR_KIND,
    startedMs: typeof p.pm_uptime === 'number' ? p.pm_uptime : undefined,
    exitCode: typeof p.exit_code === 'number' ? p.exit_code : undefined,
  };
  const events = native.agentExit(root, exited, home());
  logEvents(events);
  requestTick();
  return undefined;
}

/** One look at PM2's table after what happened, however much happened: a stop of 100 services
 * is 100 exits on the bus, and each look reads PM2's whole table (with every process's CPU
 * and memory), which kept PM2's daemon busy for seconds and the stop waiting on it. */
let tickPending = false;
function requestTick() {
  if (tickPending) return;
  tickPending = true;
  enqueue(() => {
    tickPending = false;
    return tick();
  });
}

async function tick(again = false) {
  const t = watch.tick(root, (await pm2.list()).filter(ours));
  for (const r of t.restart) {
    for (const id of r.pmIds) {
      try {
        log(`${r.service}: restarting (pm2 id ${id})`);
        await pm2.restartId(id);
        // A stop that came while PM2 restarted it wins: the stop command marks the record
        // before it asks PM2, so either its stop follows ours or we see the mark here.
        if (!native.agentWanted(root, r.service)) {
          log(`${r.service}: stopped meanwhile, stopping it again`);
          await pm2.stopId(id);
        }
      } catch (e) {
        log(`${r.service}: PM2 could not restart it: ${e.message}`);
        native.agentRestartFailed(root, r.service, e.message);
      }
    }
  }
  if (t.restart.length && !again) return tick(true); // confirm the restarts, write `restarted`
  if (wakeTimer) clearTimeout(wakeTimer);
  wakeTimer = t.wakeInMs !== undefined && t.wakeInMs !== null && t.wakeInMs < RECONCILE_MS ? setTimeout(requestTick, t.wakeInMs) : null;
  return undefined;
}

/** Log rotation and retention: rename, PM2 reopens (in the queue: quick), then compress what
 * nobody writes to any more (outside it: a large file takes seconds, exits must not wait). */
let compressing = false;
let reopenPending = false;
async function rotate() {
  if (native.agentRotate(root)) reopenPending = true;
  // PM2 reopens its files only in a quiet moment (AgentWatch.mayReopen says why).
  if (reopenPending && watch.mayReopen((await pm2.list()).map((p) => p.status))) {
    await pm2.reloadLogs();
    reopenPending = false;
  }
  if (compressing) return;
  compressing = true;
  native
    .agentCompress(root)
    .catch((e) => process.stderr.write(`${new Date().toISOString()} compress: ${e.message}\n`))
    .finally(() => {
      compressing = false;
    });
}

async function main() {
  native.agentStarted(root, process.pid);
  pm2 = await Pm2.connect(locate(root));
  const bus = await pm2.bus();
  bus.on('process:event', (pkt) => {
    if (pkt && ['exit', 'stop', 'delete'].includes(pkt.event)) watch.exitSeen();
    if (pkt && pkt.event === 'exit' && pkt.process) enqueue(() => onExit(pkt.process));
  });
  log(`agent for ${root} online (pid ${process.pid})`);
  await enqueue(tick);
  setInterval(requestTick, RECONCILE_MS);
  setInterval(() => enqueue(rotate), ROTATE_MS);
}

function shutdown(signal) {
  log(`${signal}: agent stopping`);
  // Records are written after every decision; a pending restart resumes with the next agent.
  process.exit(0);
}
process.on('SIGINT', () => shutdown('SIGINT'));
process.on('SIGTERM', () => shutdown('SIGTERM'));

main().catch((e) => {
  process.stderr.write(`[orchestrator-agent] ${e && e.stack ? e.stack : e}\n`);
  process.exit(1);
});
