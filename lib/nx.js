'use strict';
// The executors' shared shim: Nx options in, one operation call, result out.

const fs = require('fs');
const path = require('path');
const operations = require('./operations');
const report = require('./report');
const { normalize } = require('./errors');

/** Whether a project acts on the workspace (the default set, `--service`, `--all`) rather than
 * on the service of its name: the root project, the project named `workspace` wherever it is
 * defined (e.g. tools/workspace-cli/project.json), or one the plugin inferred as a workspace's. */
function isWorkspaceProject(context) {
  const project = context.projectsConfigurations?.projects?.[context.projectName];
  return !project || project.root === '.' || project.root === '' || context.projectName === 'workspace' || (project.tags || []).includes('orchestrator:workspace');
}

function commandLine(context, options, profile) {
  let c = `nx run ${context.projectName}:${context.targetName}`;
  if (profile) c += ` --profile ${profile}`;
  if (options.service) c += ` -- --service=${options.service}`;
  return c;
}

/** The nx CLI's own argv: the nearest ancestor process whose command line runs nx (the executor
 * runs in a child of it, or of a task runner it started). */
function nxArgv() {
  let pid = process.ppid;
  for (let depth = 0; depth < 6 && pid > 1; depth++) {
    let argv;
    let stat;
    try {
      argv = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    } catch (_) {
      return undefined;
    }
    if (argv.some((a) => /(^|\/)nx(\.js)?$/.test(a))) return argv;
    pid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  }
  return undefined;
}

/**
 * Nx silently drops a `--configuration` the target does not define (no error, no
 * configurationName), which would run `--configuration=prodution` under development. The
 * registered profiles are defined as configurations (nx.json targetDefaults); for any other
 * value we read the nx CLI's own argv, so an unregistered profile fails as EXIT_PROFILE_UNDEFINED.
 */
function droppedConfiguration(context, argv = nxArgv()) {
  if (!argv) return undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const eq = /^(?:--configuration|-c)=(.+)$/.exec(a);
    if (eq) return eq[1];
    if ((a === '--configuration' || a === '-c') && argv[i + 1]) return argv[i + 1];
    if (a === '--') break;
  }
  const target = argv.find((a) => /^[^-][^:\s]*:[^:\s]+:[^:\s]+$/.test(a));
  if (!target) return undefined;
  // `workspace:deps:start` names the target `deps:start`, not configuration `start`.
  const [, t, c] = target.split(':');
  return `${t}:${c}` === context.targetName ? undefined : c;
}

/**
 * With `--` on its command line, Nx passes the executor only the options after it: an option of
 * ours written before it (`nx run workspace:restart --profile staging -- --service=server`) is
 * dropped without a word. Those are read back from the nx CLI's argv, typed by the executor's
 * schema; an option Nx did pass wins.
 */
function droppedOptions(context, options, argv = nxArgv()) {
  const dash = argv ? argv.indexOf('--') : -1;
  if (dash < 0) return {};
  let schema;
  try {
    const name = String(context.target?.executor || '').split(':')[1];
    schema = require(path.join(__dirname, '..', 'executors', name, 'schema.json')).properties || {};
  } catch (_) {
    return {};
  }
  const found = {};
  const before = argv.slice(0, dash);
  for (let i = 0; i < before.length; i++) {
    const m = /^--(no-)?([A-Za-z][\w-]*)(?:=(.*))?$/.exec(before[i]);
    if (!m) continue;
    const key = m[2].replace(/-([a-z])/g, (_, c) => c.toUpperCase());
    const prop = schema[key] || schema[m[2]];
    if (!prop || options[key] !== undefined && options[key] !== prop.default) continue;
    if (prop.type === 'boolean') found[key] = m[1] ? false : m[3] === undefined ? true : m[3] !== 'false';
    else {
      let v = m[3];
      if (v === undefined && i + 1 < before.length && !before[i + 1].startsWith('-')) v = before[++i];
      if (v === undefined) continue;
      found[key] = prop.type === 'number' || prop.type === 'integer' ? Number(v) : v;
    }
  }
  return found;
}

/** The options as the user gave them: Nx's, with those it dropped before `--` put back. */
function given(options, context) {
  const argv = nxArgv();
  const o = { ...options, ...droppedOptions(context, options, argv) };
  // `--profile staging` and `--configuration=staging` both select the profile.
  o.profile = o.profile || context.configurationName || droppedConfiguration(context, argv) || undefined;
  return o;
}

async function runExecutor(verb, options, context) {
  options = given(options, context);
  const profile = options.profile;
  const services = options.service ? [options.service] : isWorkspaceProject(context) ? [] : [context.projectName];
  const command = commandLine(context, options, profile);
  try {
    const res = await operations[verb]({ cwd: context.root, profile, services: options.dependencies ? [] : services, all: options.all, dependencies: options.dependencies, command });
    if (options.json) process.stdout.write(JSON.stringify(res) + '\n');
    else report.result(res);
    // `start --watch`: what started is then kept in step with the source until Ctrl-C.
    if (verb === 'start' && options.watch) await require('./watch').watch({ cwd: context.root, profile, command });
    return { success: true };
  } catch (e) {
    const err = normalize(e, { command });
    report.error(err, options.json);
    return { success: false };
  }
}

/** `status`: the snapshot as a table (or JSON); `strict` fails the task with EXIT_UNHEALTHY. */
async function runStatus(options, context) {
  const snapshot = require('./status');
  options = given(options, context);
  const profile = options.profile;
  const service = options.service || (isWorkspaceProject(context) ? undefined : context.projectName);
  const json = Boolean(options.json) || options.format === 'json';
  let command = commandLine(context, options, profile);
  if (json) command += options.service ? ' --json' : ' -- --json';
  try {
    const r = await snapshot.report({ cwd: context.root, profile, service, strict: options.strict, json, command });
    const unhealthy = snapshot.print(r, json);
    if (unhealthy) {
      report.error(unhealthy, false);
      return { success: false };
    }
    return { success: true };
  } catch (e) {
    const err = normalize(e, { command });
    report.error(err, json);
    return { success: false };
  }
}

/** `why`: the answer printed (text or JSON); the task fails only when the question cannot be
 * answered (an unknown service, a broken workspace), not because the service is down. */
async function runWhy(options, context) {
  options = given(options, context);
  const service = options.service || (isWorkspaceProject(context) ? undefined : context.projectName);
  const command = commandLine(context, options, options.profile);
  try {
    const lib = require('./why');
    lib.print(await lib.why({ cwd: context.root, profile: options.profile, service, command }), Boolean(options.json));
    return { success: true };
  } catch (e) {
    const err = normalize(e, { command });
    report.error(err, options.json);
    return { success: false };
  }
}

/** `dashboard`: the live view until the user quits (through Nx, stdout is Nx's terminal). */
async function runDashboard(options, context) {
  options = given(options, context);
  const command = commandLine(context, options, options.profile);
  try {
    await require('./dashboard').dashboard({ cwd: context.root, profile: options.profile, command });
    return { success: true };
  } catch (e) {
    report.error(normalize(e, { command }));
    return { success: false };
  }
}

/** `watch`: the development loop, until a signal ends it. */
async function runWatch(options, context) {
  options = given(options, context);
  const command = commandLine(context, options, options.profile);
  try {
    await require('./watch').watch({ cwd: context.root, profile: options.profile, command });
    return { success: true };
  } catch (e) {
    report.error(normalize(e, { command }));
    return { success: false };
  }
}

/** `logs`: the window printed (text or JSON lines). */
async function runLogs(options, context) {
  options = given(options, context);
  const service = options.service || (isWorkspaceProject(context) ? undefined : context.projectName);
  const command = `nx run ${context.projectName}:${context.targetName}`;
  try {
    const lib = require('./logs');
    await (options.follow ? lib.follow : lib.print)({ cwd: context.root, service, since: options.since, until: options.until, tail: options.tail, stream: options.stream, grep: options.grep, level: options.level, json: options.json, command });
    return { success: true };
  } catch (e) {
    const err = normalize(e, { command });
    report.error(err, options.json);
    return { success: false };
  }
}

/** `verify`: the dry run and the problems; any problem fails the task (EXIT_USAGE). */
async function runVerify(options, context) {
  const lib = require('./verify');
  options = given(options, context);
  const profile = options.profile;
  const allProfiles = Boolean(options.allProfiles || options['all-profiles']);
  let command = commandLine(context, options, profile);
  if (allProfiles) command += ' -- --all-profiles';
  try {
    const r = lib.verify({ cwd: context.root, profile, allProfiles, command });
    process.stdout.write(options.json ? JSON.stringify(r.report) + '\n' : r.text);
    if (r.ok) return { success: true };
    report.error(lib.failure(r, command), false);
    return { success: false };
  } catch (e) {
    report.error(normalize(e, { command }), options.json);
    return { success: false };
  }
}

module.exports = { runExecutor, runStatus, runWhy, runDashboard, runWatch, runLogs, runVerify };
