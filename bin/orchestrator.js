#!/usr/bin/env node
'use strict';
// `orchestrator <command> [service…] [--profile p] [--all] [--json]`: the same operations as the
// Nx executors, exiting with the numeric codes of the exit-code table.

const { parseArgs } = require('util');
const path = require('path');

const USAGE = `usage: orchestrator <command> [service…] [options]

commands:
  start [service…]     start services (default set, or --all) and wait until ready
  stop [service…]      stop this workspace's services
  restart [service…]   restart (cluster apps reload with zero downtime)
  deploy [service…]    verify, then reload apps under --profile (zero downtime) and wait until
                       healthy; dependencies are started if needed (through Nx: build first)
  setup [service…]     install app dependencies and prepare their env (idempotent)
  test [service…]      run app tests with the profile's env loaded
  status [service]     one health snapshot of every app and dependency (CPU and memory too)
  why <service>        why a service is not up: what it waits on and their state, what a start
                       would refuse, health output, who holds its ports, its last lines, what to do
  dashboard            a live terminal view: every service with CPU and memory, their logs and
                       events; restart, stop, start or ask why from it (not a terminal: one
                       status table)
  watch                keep the running services in step with the source: a change is built
                       through Nx and reloads what it reaches, in dependency order, each ready
                       before its dependents (until Ctrl-C; the services keep running)
  logs [service…]      log lines of services in time order (--since, --until, --tail, --stream,
                       --grep, --level, --json)
  verify               lint and dry-run the workflow without starting anything (a CI gate)
  exit-codes           print the exit-code table

options:
  --profile <name>     registered profile (default: development)
  --all                every service instead of the default set
  --deps               every docker dependency (docker-compose.yml services)
  --watch              start: then watch (as orchestrator watch does) until Ctrl-C
  --fail-fast          start/restart/deploy: an app whose new process exits before it is ready
                       fails the command at once (the restart policy still restarts it)
  --concurrency <n>    start/stop/restart/deploy: at most n PM2 calls and n engine operations at
                       once (default: cores × 4 each; stop: all)
  --cwd <dir>          a directory inside the workspace (default: .)
  --json               print the result or the error as JSON (status: --format=json too)
  --service <name>     status: one service
  --strict             status: exit EXIT_UNHEALTHY (20) when a service is failed or degraded
  --since, --until     logs: 30m, 48h, 7d or an RFC 3339 instant
  --tail <n>           logs: the last n lines
  --stream <s>         logs: out, err or all (default)
  --grep <regex>       logs: only lines matching
  --level <severity>   logs: at least trace|debug|info|warn|error|fatal
  --follow, -f         logs: keep printing new lines (survives a rotation)
  --all-profiles       verify: check every registered profile
  --install-hook       verify: install a git pre-commit hook running verify (--remove-hook)
  -V, --version        the package's version
  -h, --help           this text`;

const COMMANDS = ['start', 'stop', 'restart', 'deploy', 'setup', 'test', 'status', 'why', 'dashboard', 'watch', 'logs', 'verify'];

function usageError(message, json) {
  const { make } = require('../lib/errors');
  const report = require('../lib/report');
  const err = make('EXIT_USAGE', {
    command: ['orchestrator', ...process.argv.slice(2)].join(' '),
    message,
    remediation: ['Run `orchestrator --help` for the commands and options'],
  });
  report.error(err, json);
  process.exit(err.exitCode);
}

async function main() {
  const argv = process.argv.slice(2);
  const json = argv.includes('--json') || argv.includes('--format=json');
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        profile: { type: 'string' },
        all: { type: 'boolean' },
        deps: { type: 'boolean' },
        watch: { type: 'boolean' },
        'fail-fast': { type: 'boolean' },
        concurrency: { type: 'string' },
        cwd: { type: 'string' },
        json: { type: 'boolean' },
        format: { type: 'string' },
        service: { type: 'string' },
        strict: { type: 'boolean' },
        since: { type: 'string' },
        until: { type: 'string' },
        tail: { type: 'string' },
        stream: { type: 'string' },
        grep: { type: 'string' },
        level: { type: 'string' },
        follow: { type: 'boolean', short: 'f' },
        'all-profiles': { type: 'boolean' },
        'install-hook': { type: 'boolean' },
        'remove-hook': { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean', short: 'V' },
      },
    });
  } catch (e) {
    return usageError(e.message, json);
  }
  const { values, positionals } = parsed;
  const [cmd, ...services] = positionals;
  if (values.version) {
    const pkg = JSON.parse(require('fs').readFileSync(path.join(__dirname, '..', 'package.json'), 'utf8'));
    process.stdout.write(`${pkg.version}\n`);
    return process.exit(0);
  }
  if (values.help || !cmd) {
    process.stdout.write(USAGE + '\n');
    return process.exit(values.help ? 0 : 2);
  }
  if (cmd === 'exit-codes') {
    const { EXIT } = require('../lib/errors');
    for (const [name, code] of Object.entries(EXIT)) process.stdout.write(`${String(code).padStart(3)}  ${name}\n`);
    return process.exit(0);
  }
  if (!COMMANDS.includes(cmd)) return usageError(`unknown command "${cmd}"`, json);
  if (values.profile !== undefined && values.profile.trim() === '') return usageError('--profile needs a value', json);

  if (!['status', 'logs', 'why'].includes(cmd) && (values.format !== undefined || values.service !== undefined || values.strict)) {
    return usageError('--format, --service and --strict belong to `status` (and --service to `logs` and `why`)', json);
  }
  if (cmd === 'why' && (values.format !== undefined || values.strict)) return usageError('--format and --strict belong to `status`', json);
  const logFlags = ['since', 'until', 'tail', 'stream', 'grep', 'level', 'follow'].filter((f) => values[f] !== undefined);
  if (cmd !== 'logs' && logFlags.length) return usageError(`--${logFlags[0]} belongs to \`logs\``, json);
  const verifyFlag = ['all-profiles', 'install-hook', 'remove-hook'].find((f) => values[f]);
  if (cmd !== 'verify' && verifyFlag) return usageError(`--${verifyFlag} belongs to \`verify\``, json);
  if (values.concurrency !== undefined) {
    if (!['start', 'stop', 'restart', 'deploy'].includes(cmd)) return usageError('--concurrency belongs to start, stop, restart and deploy', json);
    if (!/^[1-9][0-9]*$/.test(values.concurrency)) return usageError(`--concurrency must be a whole number of at least 1, not "${values.concurrency}"`, json);
  }
  if (values.format !== undefined && !['json', 'table'].includes(values.format)) {
    return usageError(`--format must be json or table, not "${values.format}"`, json);
  }
  const { normalize } = require('../lib/errors');
  const command = ['orchestrator', ...argv].join(' ');
  if (cmd === 'status') return status(values, services, command, json);
  if (cmd === 'why') return why(values, services, command, json);
  if (cmd === 'dashboard') return dashboard(values, services, command, json);
  if (cmd === 'watch') return watch(values, services, command, json);
  if (values.watch && cmd !== 'start') return usageError('--watch belongs to `start` (or run `orchestrator watch`)', json);
  if (values['fail-fast'] && !['start', 'restart', 'deploy'].includes(cmd)) return usageError('--fail-fast belongs to start, restart and deploy', json);
  if (cmd === 'verify') {
    if (services.length) return usageError('verify takes no service names (it checks the whole workspace)', json);
    try {
      const verifier = require('../lib/verify');
      if (values['install-hook'] || values['remove-hook']) {
        if (values['install-hook'] && values['remove-hook']) return usageError('--install-hook and --remove-hook exclude each other', json);
        const install = Boolean(values['install-hook']);
        const file = verifier.hook({ cwd: values.cwd ? path.resolve(values.cwd) : process.cwd(), install, command });
        process.stdout.write(install ? `pre-commit hook installed: ${file}\n` : file ? `pre-commit hook removed: ${file}\n` : 'no pre-commit hook of ours to remove\n');
        return process.exit(0);
      }
      const r = verifier.verify({ cwd: values.cwd ? path.resolve(values.cwd) : process.cwd(), profile: values.profile, allProfiles: values['all-profiles'], command });
      process.stdout.write(json ? JSON.stringify(r.report) + '\n' : r.text);
      if (r.ok) return process.exit(0);
      // The report (text or JSON) is stdout's; the verdict goes to stderr, as status --strict's.
      const err = verifier.failure(r, command);
      require('../lib/report').error(err, false);
      return process.exit(err.exitCode);
    } catch (e) {
      const err = normalize(e, { command });
      require('../lib/report').error(err, json);
      return process.exit(err.exitCode);
    }
  }
  if (cmd === 'logs') {
    try {
      const logs = require('../lib/logs');
      const verb = values.follow ? logs.follow : logs.print;
      await verb({
        cwd: values.cwd ? path.resolve(values.cwd) : process.cwd(),
        services: values.service !== undefined ? [values.service, ...services] : services,
        since: values.since,
        until: values.until,
        tail: values.tail,
        stream: values.stream,
        grep: values.grep,
        level: values.level,
        json,
        command,
      });
      return process.exit(0);
    } catch (e) {
      const err = normalize(e, { command });
      require('../lib/report').error(err, json);
      return process.exit(err.exitCode);
    }
  }

  const operations = require('../lib/operations');
  const report = require('../lib/report');
  try {
    const res = await operations[cmd]({
      cwd: values.cwd ? path.resolve(values.cwd) : process.cwd(),
      profile: values.profile,
      services,
      all: values.all,
      dependencies: values.deps,
      concurrency: values.concurrency !== undefined ? Number(values.concurrency) : undefined,
      failFast: values['fail-fast'],
      command,
    });
    if (values.json) process.stdout.write(JSON.stringify(res) + '\n');
    else report.result(res);
    if (values.watch) await require('../lib/watch').watch({ cwd: values.cwd ? path.resolve(values.cwd) : process.cwd(), profile: values.profile, command });
    process.exit(0);
  } catch (e) {
    const err = normalize(e, { command });
    report.error(err, values.json);
    process.exit(err.exitCode);
  }
}

/** `dashboard`: one addon call that returns when the user quits. */
async function dashboard(values, positionals, command, json) {
  if (positionals.length) return usageError('dashboard shows every service; it takes no service names', json);
  if (json) return usageError('--json belongs to the snapshot commands; for one snapshot use `orchestrator status --json`', json);
  try {
    await require('../lib/dashboard').dashboard({ cwd: values.cwd ? path.resolve(values.cwd) : process.cwd(), profile: values.profile, command });
    return process.exit(0);
  } catch (e) {
    const err = require('../lib/errors').normalize(e, { command });
    require('../lib/report').error(err, json);
    return process.exit(err.exitCode);
  }
}

/** `watch`: one addon call that returns when a signal ends it. */
async function watch(values, positionals, command, json) {
  if (positionals.length) return usageError('watch follows every running service; it takes no service names', json);
  if (json) return usageError('--json belongs to the snapshot commands; watch prints one line per cycle', json);
  try {
    await require('../lib/watch').watch({ cwd: values.cwd ? path.resolve(values.cwd) : process.cwd(), profile: values.profile, command });
    return process.exit(0);
  } catch (e) {
    const err = require('../lib/errors').normalize(e, { command });
    require('../lib/report').error(err, json);
    return process.exit(err.exitCode);
  }
}

/** `why <service>`: read-only, one addon call; exits 0 whatever the answer (it explains). */
async function why(values, positionals, command, json) {
  const lib = require('../lib/why');
  if (positionals.length > 1) return usageError('why explains one service at a time', json);
  const service = values.service ?? positionals[0];
  if (!service) return usageError('why needs the service to explain: `orchestrator why <service>`', json);
  try {
    lib.print(await lib.why({ cwd: values.cwd ? path.resolve(values.cwd) : process.cwd(), profile: values.profile, service, command }), json);
    return process.exit(0);
  } catch (e) {
    const err = require('../lib/errors').normalize(e, { command });
    require('../lib/report').error(err, json);
    return process.exit(err.exitCode);
  }
}

/** `status` stays off the operations module (and so off PM2's client): one addon call. */
async function status(values, positionals, command, json) {
  const { report, print } = require('../lib/status');
  const { normalize } = require('../lib/errors');
  if (positionals.length > 1) return usageError('status takes at most one service', json);
  try {
    const r = await report({
      cwd: values.cwd ? path.resolve(values.cwd) : process.cwd(),
      profile: values.profile,
      service: values.service ?? positionals[0],
      strict: values.strict,
      json,
      command,
    });
    const unhealthy = print(r, json);
    if (unhealthy) {
      process.stderr.write(require('../lib/errors').format(unhealthy) + '\n');
      return process.exit(unhealthy.exitCode);
    }
    return process.exit(0);
  } catch (e) {
    const err = normalize(e, { command });
    require('../lib/report').error(err, json);
    return process.exit(err.exitCode);
  }
}

main();
