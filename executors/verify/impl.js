'use strict';
const { runVerify } = require('../../lib/nx');

module.exports = (options, context) => runVerify(options, context);
