'use strict';
// Programmatic API: require('@workspace/orchestrator').
const { start, stop, restart, deploy, setup, test } = require('./operations');
const { OrchestratorError, EXIT } = require('./errors');
const native = require('./native');

module.exports = {
  // Registered in nx.json `plugins`, Nx loads this module as a plugin: inferred projects and
  // targets (createNodes; createNodesV2 for Nx 22) and their edges (createDependencies),
  // lib/plugin.js.
  name: '@workspace/orchestrator',
  createNodes: require('./plugin').createNodes,
  createNodesV2: require('./plugin').createNodesV2,
  createDependencies: require('./plugin').createDependencies,
  start,
  stop,
  restart,
  deploy,
  setup,
  test,
  status: require('./status').status,
  why: (opts) => require('./why').why(opts),
  dashboard: (opts) => require('./dashboard').dashboard(opts),
  watch: (opts) => require('./watch').watch(opts),
  verify: (opts) => require('./verify').verify(opts),
  logs: require('./logs').logs,
  logStream: require('./logs').logStream,
  logSlice: require('./logs').logSlice,
  followLogs: require('./logs').follow,
  OrchestratorError,
  exitCodes: EXIT,
  native,
};
