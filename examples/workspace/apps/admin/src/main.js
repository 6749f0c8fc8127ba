import { apiUrl } from './api.js';

document.getElementById('api').textContent = apiUrl(import.meta.env);
