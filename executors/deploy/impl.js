'use strict';
const { runExecutor } = require('../../lib/nx');

module.exports = (options, context) => runExecutor('deploy', options, context);
