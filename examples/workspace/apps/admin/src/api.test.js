import { describe, expect, it } from 'vitest';
import { apiUrl } from './api.js';

describe('apiUrl', () => {
  it('builds the info URL from the profile env', () => {
    expect(apiUrl({ VITE_API_URL: 'http://127.0.0.1:3000' })).toBe('http://127.0.0.1:3000/api/info');
  });

  it('runs with the profile env loaded', () => {
    expect(['development', 'staging', 'production']).toContain(process.env.APP_ENV);
    expect(apiUrl(process.env)).toMatch(/\/api\/info$/);
  });

  it('refuses a missing URL', () => {
    expect(() => apiUrl({})).toThrow(/VITE_API_URL/);
  });
});
