/*
 * The JSON client the console and the analytics dashboard share (plain ES2020, no build step).
 *
 *   const api = FrontdeskApi.client({ prefix: '/api/console', csrf: () => S.csrf,
 *                                     onUnauthorized: (path) => ... });
 *   const { ok, status, data, error } = await api('GET', '/me');
 *
 * It never throws: a network failure or an error answer comes back as {ok: false, error:
 * {code, message}}, the message fit to show to a person.
 */
(() => {
  'use strict';

  function errorOf(status, data) {
    const e = data && data.error;
    if (e && e.message) return { code: e.code || String(status), message: e.message };
    if (status === 403) return { code: 'forbidden', message: "You don't have permission to do that." };
    if (data && typeof data.detail === 'string') return { code: String(status), message: data.detail };
    return { code: String(status), message: `The request failed (HTTP ${status}).` };
  }

  function client({ prefix = '', csrf = () => null, onUnauthorized = () => {} } = {}) {
    return async function api(method, path, body) {
      const opts = { method, credentials: 'same-origin', headers: { Accept: 'application/json' } };
      if (method !== 'GET') {
        opts.headers['Content-Type'] = 'application/json';
        const token = csrf();
        if (token) opts.headers['X-CSRF-Token'] = token;
        opts.body = JSON.stringify(body || {});
      }
      let res;
      try {
        res = await fetch(prefix + path, opts);
      } catch {
        return { ok: false, status: 0, data: null,
          error: { code: 'network', message: "Can't reach the server. Check your connection." } };
      }
      const data = res.status === 204 ? null : await res.json().catch(() => null);
      if (res.status === 401) onUnauthorized(path);
      return { ok: res.ok, status: res.status, data, error: res.ok ? null : errorOf(res.status, data) };
    };
  }

  window.FrontdeskApi = { client, errorOf };
})();
