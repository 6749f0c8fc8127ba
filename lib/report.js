'use strict';
// Human output for command results and errors, shared by the executors and the bin.

const { format } = require('./errors');

const VERB = {
  start: 'started',
  replace: 'started (replaced a stopped entry)',
  keep: 'already online',
  reload: 'reloaded (zero downtime)',
  restart: 'restarted',
  stop: 'stopped',
  'already-stopped': 'already stopped',
};

function result(res, write = (l) => process.stdout.write(l + '\n')) {
  for (const s of res.services || []) {
    const parts = [s.switchedFrom ? `profile ${s.switchedFrom} → ${s.profile}` : `profile ${s.profile}`];
    if (s.image) parts.push(`image ${s.image}${s.pulled ? ' (pulled)' : ''}`);
    if (s.containerId) parts.push(`container ${s.containerId.slice(0, 12)}${s.adopted ? ' (kept)' : ''}`);
    if (s.pids && s.pids.length) parts.push(`pid ${s.pids.join(',')}`);
    if (s.ports && s.ports.length) parts.push(`ports ${s.ports.join(',')}`);
    if (s.readyMs != null) parts.push(s.health === 'healthy' ? `healthy in ${(s.readyMs / 1000).toFixed(1)} s` : `ready in ${s.readyMs} ms`);
    if (s.install === 'installed') parts.push('dependencies installed');
    if (s.passed) parts.push('tests passed');
    if (s.status === 'completed') parts.push('one-shot job, exit code 0');
    // A fork app moving to another profile is started afresh (its entry replaced): a restart.
    const action = s.switchedFrom && s.action === 'replace' ? 'restart' : s.action;
    const what = s.status === 'completed' ? 'completed' : action ? VERB[action] || action : s.passed ? 'tested' : `set up (${s.install})`;
    write(`✔ ${s.service.padEnd(12)} ${what} — ${parts.join(', ')}`);
  }
}

function error(err, json = false) {
  if (json) process.stdout.write(JSON.stringify(err.toJSON()) + '\n');
  else process.stderr.write(format(err) + '\n');
}

module.exports = { result, error };
