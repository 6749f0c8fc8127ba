'use strict';
// Benchmark group `compose` (issue 15): `orchestrator verify` of a 100-service compose file —
// anchors and merge keys, x- fields, interpolation with defaults, networks with aliases, named
// volumes, healthchecks, long-form depends_on — against the bin's own start (`orchestrator
// exit-codes`, the baseline). Goal: at most 100 ms beyond the baseline. A compose-only workspace:
// nothing runs, so no engine or PM2 is needed.
// Run through `npm run bench` (bench/run.js), or alone: node bench/compose.js [--runs N]

const c = require('./common');

const N = 100;

function composeFile() {
  let t = 'name: bench-compose\nx-common: &common\n  image: ${IMAGE:-orchestrator-local/busybox:1}\n  restart: unless-stopped\n  environment: &env\n    TZ: UTC\n    LEVEL: ${LEVEL:-info}\n  networks: [back]\n  healthcheck:\n    test: ["CMD", "true"]\n    interval: 5s\n';
  t += 'services:\n';
  for (let i = 0; i < N; i++) {
    t += `  svc${i}:\n    <<: *common\n    command: ["sh", "-c", "echo ${i}; sleep 3600"]\n    environment:\n      <<: *env\n      INDEX: "${i}"\n      PEER: svc${Math.max(0, i - 1)}\n`;
    t += `    ports: ["127.0.0.1:${20000 + i}:80"]\n    volumes: [data${i % 10}:/data, "./conf:/conf:ro,z"]\n`;
    t += `    networks:\n      back:\n        aliases: [svc${i}.internal]\n`;
    if (i > 0) t += `    depends_on:\n      svc${i - 1}:\n        condition: service_healthy\n`;
  }
  t += 'networks:\n  back: {}\nvolumes:\n';
  for (let v = 0; v < 10; v++) t += `  data${v}: {}\n`;
  return t;
}

async function bench({ runs }) {
  const box = c.sandbox('compose');
  c.workspace(box, { compose: composeFile(), files: { 'conf/app.conf': 'x=1\n' } });
  try {
    const r = c.run(box, process.execPath, [c.BIN, 'verify', '--json']);
    const report = JSON.parse(r.stdout);
    if (report.problems.length) throw new Error(`the bench file should verify: ${JSON.stringify(report.problems.slice(0, 3))}`);
    if (report.profiles[0].order.length !== N) throw new Error(`expected ${N} services in the start order, got ${report.profiles[0].order.length}`);
    const t = await c.measure(
      {
        [`orchestrator verify (${N} services)`]: () => c.time(box, process.execPath, [c.BIN, 'verify']),
        'orchestrator exit-codes (the bin)': () => c.time(box, process.execPath, [c.BIN, 'exit-codes']),
      },
      runs * 3,
    );
    const group = `compose verify (${N} services)`;
    return [
      { group, case: `orchestrator verify (${N} services)`, unit: 'ms', samples: t[`orchestrator verify (${N} services)`], goal: 'base + 100 ms or less' },
      { group, case: 'orchestrator exit-codes (the bin)', unit: 'ms', samples: t['orchestrator exit-codes (the bin)'], baseline: true },
    ];
  } finally {
    c.teardown(box);
  }
}

module.exports = { bench, composeFile };
if (require.main === module) require('./run').main(['compose', ...process.argv.slice(2)]);
