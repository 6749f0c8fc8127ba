'use strict';
const { runStatus } = require('../../lib/nx');

module.exports = (options, context) => runStatus(options, context);
