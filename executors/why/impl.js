'use strict';
const { runWhy } = require('../../lib/nx');

module.exports = (options, context) => runWhy(options, context);
