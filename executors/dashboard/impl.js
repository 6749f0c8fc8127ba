'use strict';
const { runDashboard } = require('../../lib/nx');

module.exports = (options, context) => runDashboard(options, context);
