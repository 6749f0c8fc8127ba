// Where the admin UI finds the API, from the profile's VITE_API_URL.
export function apiUrl(env) {
  const base = env.VITE_API_URL;
  if (!base) throw new Error('VITE_API_URL is not set for this profile');
  return new URL('/api/info', base).toString();
}
