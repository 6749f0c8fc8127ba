'use strict';
// The JSON Schemas of contracts/ compiled once (ajv, draft 2020-12), for the specs that check
// real outputs against them.

const fs = require('fs');
const path = require('path');
const Ajv = require('ajv/dist/2020');

const DIR = path.join(__dirname, '..', 'contracts');
const ajv = new Ajv({ allErrors: true, strict: true });
ajv.addFormat('date-time', (s) => !Number.isNaN(Date.parse(s)) && /^\d{4}-\d\d-\d\dT/.test(s));
const compiled = {};

/** Asserts `value` fits contracts/<name>.schema.json; the message lists every mismatch. */
function check(name, value, what = name) {
  compiled[name] ??= ajv.compile(JSON.parse(fs.readFileSync(path.join(DIR, `${name}.schema.json`), 'utf8')));
  const validate = compiled[name];
  if (!validate(value)) throw new Error(`${what} does not fit contracts/${name}.schema.json: ${ajv.errorsText(validate.errors)}\n${JSON.stringify(value).slice(0, 400)}`);
}

module.exports = { check, DIR };
