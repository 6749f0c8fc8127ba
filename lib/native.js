'use strict';
// The addon. The generated napi loader (index.js at the package root) probes the platform
// (libc flavour, fallbacks) on every load; `status` is polled, so the binary built for this
// machine is required directly when it is there, and the loader is the fallback.
function load() {
  const abi = process.platform === 'linux' ? `${process.platform}-${process.arch}-gnu` : `${process.platform}-${process.arch}`;
  try {
    return require(`../orchestrator.${abi}.node`);
  } catch (_) {
    return require('../index.js');
  }
}
module.exports = load();
