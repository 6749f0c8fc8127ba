'use strict';
// The addon, and its errors as the one place they become JS errors. The generated napi loader
// (index.js at the package root) probes the platform (libc flavour, fallbacks) on every load;
// `status` is polled, so the binary built for this machine is required directly when it is
// there, and the loader is the fallback.
//
// The addon throws (or rejects with) its actionable error (DESIGN §3) as a JS Error whose `code`,
// `exitCode`, `service`, `command` and `remediation` are properties (src/boundary.rs); every
// exported function is wrapped here so that what reaches the rest of the JS is an instance of
// OrchestratorError (its `format`, its `toJSON`). The classes (LogReader,
// WorkspaceLock) are kept as they are; errors.normalize, which every caller of theirs goes
// through, converts with the same `fromAddon`. No message is read anywhere.
function load() {
  const abi = process.platform === 'linux' ? `${process.platform}-${process.arch}-gnu` : `${process.platform}-${process.arch}`;
  try {
    return require(`../orchestrator.${abi}.node`);
  } catch (_) {
    return require('../index.js');
  }
}

const addon = load();

/** The addon's error as an OrchestratorError (lib/errors.js), required when first needed:
 * errors.js itself loads the addon for the exit-code table. */
const structured = (e) => require('./errors').fromAddon(e);

function wrap(fn) {
  return function addonCall(...args) {
    let out;
    try {
      out = fn.apply(this, args);
    } catch (e) {
      throw structured(e);
    }
    return out && typeof out.then === 'function' ? out.catch((e) => Promise.reject(structured(e))) : out;
  };
}

// Functions are camelCase, classes (LogReader, WorkspaceLock) PascalCase and kept as they are.
module.exports = Object.fromEntries(Object.entries(addon).map(([k, v]) => [k, typeof v === 'function' && /^[a-z]/.test(k) ? wrap(v) : v]));
