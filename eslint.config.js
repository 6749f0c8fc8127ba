'use strict';
// ESLint for the JS side (lib/, bin/, executors/, __test__/, bench/, scripts/): the recommended
// rules, CommonJS on Node. `npm test` runs it (`npx eslint .`).
const js = require('@eslint/js');
const globals = require('globals');

module.exports = [
  { ignores: ['index.js', 'index.d.ts', 'examples/**', 'target/**', 'node_modules/**', 'bench/results/**'] },
  js.configs.recommended,
  {
    files: ['**/*.js'],
    languageOptions: { ecmaVersion: 2023, sourceType: 'commonjs', globals: { ...globals.node } },
    rules: {
      // An unused argument of a callback is often part of its signature (Nx, PM2, node:test).
      'no-unused-vars': ['error', { args: 'none', caughtErrors: 'none' }],
    },
  },
];
