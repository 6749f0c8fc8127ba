'use strict';
// Programmatic API: require('@workspace/orchestrator').
const operations = require('./operations');
const { OrchestratorError, EXIT } = require('./errors');
const native = require('./native');

module.exports = {
  ...operations,
  OrchestratorError,
  exitCodes: EXIT,
  native,
};
