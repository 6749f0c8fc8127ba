'use strict';
// The executors' shared shim: Nx options in, one operation call, result out.

const fs = require('fs');
const operations = require('./operations');
const report = require('./report');
const { normalize } = require('./errors');

function isRootProject(context) {
  const project = context.projectsConfigurations?.projects?.[context.projectName];
  return !project || project.root === '.' || project.root === '';
}

function commandLine(context, options, profile) {
  let c = `nx run ${context.projectName}:${context.targetName}`;
  if (profile) c += ` --profile ${profile}`;
  if (options.service) c += ` -- --service=${options.service}`;
  return c;
}

/**
 * Nx silently drops a `--configuration` the target does not define (no error, no
 * configurationName), which would run `--configuration=prodution` under development. The
 * registered profiles are defined as configurations (nx.json targetDefaults); for any other
 * value we read the nx CLI's own argv, so an unregistered profile fails as EXIT_PROFILE_UNDEFINED.
 */
function droppedConfiguration(context) {
  let argv;
  try {
    argv = fs.readFileSync(`/proc/${process.ppid}/cmdline`, 'utf8').split('\0');
  } catch (_) {
    return undefined;
  }
  if (!argv.some((a) => /(^|\/)nx(\.js)?$/.test(a))) return undefined;
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

async function runExecutor(verb, options, context) {
  // `--profile staging` and `--configuration=staging` both select the profile.
  const profile = options.profile || context.configurationName || droppedConfiguration(context) || undefined;
  const services = options.service ? [options.service] : isRootProject(context) ? [] : [context.projectName];
  const command = commandLine(context, options, profile);
  try {
    const res = await operations[verb]({ cwd: context.root, profile, services: options.dependencies ? [] : services, all: options.all, dependencies: options.dependencies, command });
    if (options.json) process.stdout.write(JSON.stringify(res) + '\n');
    else report.result(res);
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
  const profile = options.profile || context.configurationName || droppedConfiguration(context) || undefined;
  const service = options.service || (isRootProject(context) ? undefined : context.projectName);
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

/** `logs`: the window printed (text or JSON lines). */
async function runLogs(options, context) {
  const service = options.service || (isRootProject(context) ? undefined : context.projectName);
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
  const profile = options.profile || context.configurationName || droppedConfiguration(context) || undefined;
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

module.exports = { runExecutor, runStatus, runLogs, runVerify };
