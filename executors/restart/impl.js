'use strict';
const { runExecutor } = require('../../lib/nx');

module.exports = (options, context) => runExecutor('restart', options, context);
