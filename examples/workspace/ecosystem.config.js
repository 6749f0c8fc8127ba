// PM2's own format. The orchestrator adds the profile's config/env/<profile>.env on top of
// `env` + `env_<profile>`, its metadata, and log files under apps/logs/<service>/.
module.exports = {
  apps: [
    {
      name: 'admin',
      cwd: 'apps/admin',
      script: 'node_modules/vite/bin/vite.js',
      exec_mode: 'fork',
      // Vite's dev server reloads the page itself: `orchestrator watch` leaves it alone.
      watch: false,
      env: { NODE_ENV: 'development', PORT: '5173' },
      env_development: { NODE_ENV: 'development' },
      env_staging: { NODE_ENV: 'production' },
      env_production: { NODE_ENV: 'production' },
    },
    {
      name: 'server',
      cwd: 'apps/server',
      script: 'src/main.js',
      exec_mode: 'cluster',
      instances: 2,
      kill_timeout: 5000,
      listen_timeout: 10000,
      env: { PORT: '3000', HOST: '127.0.0.1' },
      env_development: { NODE_ENV: 'development', LOG_LEVEL: 'debug' },
      env_staging: { NODE_ENV: 'staging', LOG_LEVEL: 'info' },
      env_production: { NODE_ENV: 'production', LOG_LEVEL: 'warn' },
    },
  ],
};
