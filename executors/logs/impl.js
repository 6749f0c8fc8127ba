'use strict';
const { runLogs } = require('../../lib/nx');

module.exports = (options, context) => runLogs(options, context);
