'use strict';
// One place that turns failures into the actionable-error contract (DESIGN §3) and prints them.

const native = require('./native');

const EXIT = Object.fromEntries(native.exitCodes().map((c) => [c.name, c.code]));

/** A command line as errors show it: a word longer than 64 characters (a pasted blob, a 10 KB
 * "service name") is cut to its first 40 and its length, so an error stays readable. */
function shortCommand(command) {
  return String(command).replace(/\S{65,}/g, (w) => `${w.slice(0, 40)}…(${w.length} characters)`);
}

class OrchestratorError extends Error {
  constructor({ code, exitCode, service = null, command = '', message, remediation = [] }) {
    super(message);
    this.name = 'OrchestratorError';
    this.code = code;
    this.exitCode = exitCode ?? EXIT[code] ?? 1;
    this.service = service;
    this.command = shortCommand(command);
    this.remediation = remediation;
  }

  toJSON() {
    return {
      error: {
        code: this.code,
        exitCode: this.exitCode,
        service: this.service,
        command: this.command,
        message: this.message,
        remediation: this.remediation,
      },
    };
  }
}

/** The addon's actionable error (a JS Error whose `code`, `exitCode`, `service`, `command` and
 * `remediation` the addon set as properties: src/boundary.rs) as an OrchestratorError; anything
 * else as it is. Properties only: no message is read.
 * @param {any} e */
function fromAddon(e) {
  if (!e || e instanceof OrchestratorError || typeof e.code !== 'string' || typeof e.exitCode !== 'number' || !Array.isArray(e.remediation)) return e;
  return new OrchestratorError({
    code: e.code,
    exitCode: e.exitCode,
    service: e.service ?? null,
    command: e.command ?? '',
    message: e.message,
    remediation: e.remediation,
  });
}

function make(code, fields) {
  return new OrchestratorError({ code, exitCode: EXIT[code], ...fields });
}

/**
 * Converts anything thrown (PM2 errors, bugs; the addon's errors already are OrchestratorErrors,
 * lib/native.js) into an OrchestratorError.
 * @param {any} err
 * @param {{ command?: string, service?: string | null, remediation?: string[] }} [context]
 */
function normalize(err, { command = '', service = null, remediation = undefined } = {}) {
  err = fromAddon(err);
  if (err instanceof OrchestratorError) return err;
  const text = err && typeof err.message === 'string' ? err.message : String(err);
  return make('EXIT_FAILURE', {
    service,
    command,
    message: text,
    remediation: remediation || ['Rerun with ORCHESTRATOR_DEBUG=1 for a stack trace', 'Run `npx pm2 ls` to see what PM2 runs'],
  });
}

function format(err) {
  const lines = [
    `✖ ${err.code} (${err.exitCode})${err.service ? ` — ${err.service}` : ''}: ${err.message}`,
    `  command: ${err.command}`,
  ];
  if (err.remediation.length) {
    lines.push('  what to do:');
    for (const r of err.remediation) lines.push(`    - ${r}`);
  }
  if (process.env.ORCHESTRATOR_DEBUG && err.stack) lines.push(err.stack);
  return lines.join('\n');
}

module.exports = { OrchestratorError, EXIT, make, normalize, format, fromAddon };
