'use strict';
const { runWatch } = require('../../lib/nx');

module.exports = (options, context) => runWatch(options, context);
