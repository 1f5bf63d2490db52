/**
 * mtpaas-tenant.js: tenant selection for the frontend of a service built on mtpaas.
 *
 * Drop-in, no build step, no dependencies. Works as an ES module in browsers
 * (`<script type="module">`, bundlers) and in Node 20+. When loaded in a browser it
 * also sets `window.MtpaasTenant` for code that does not use `import`.
 *
 * The tenant of the page is taken, in this order, from:
 *   1. the `?tenant=` query parameter   (https://myservice.k-university.ai/?tenant=univ_8)
 *   2. the `tenant_id` cookie           (set by rememberTenant)
 *   3. the subdomain under the base domain (https://univ_8.myservice.k-university.ai)
 * Values that are not valid tenant ids (`^[a-z][a-z0-9_]{0,49}$`, and not `public`,
 * `information_schema` or `pg_*`) are ignored and the next source is tried.
 *
 * Every API request then carries `X-Tenant-ID: <tenant>` and the browser's cookies
 * (`credentials: 'include'` / `withCredentials: true`), see tenantFetch and
 * installAxiosInterceptor.
 *
 * The resolution functions take their inputs as parameters; only when an input is
 * omitted (undefined) do they read the browser's `location` / `document.cookie`.
 */

export const TENANT_HEADER = 'X-Tenant-ID';
export const TENANT_COOKIE = 'tenant_id';
export const TENANT_QUERY_PARAM = 'tenant';
export const TENANT_ID_PATTERN = /^[a-z][a-z0-9_]{0,49}$/;
/** 30 days, in seconds. */
export const TENANT_COOKIE_MAX_AGE = 30 * 24 * 60 * 60;

const RESERVED_NAMES = new Set(['public', 'information_schema']);

const settings = {
  /** @type {string | null} */
  baseDomain: null,
};

/**
 * Sets page-wide defaults.
 * @param {{ baseDomain?: string | null }} [options]
 *   baseDomain: the domain tenants are subdomains of (e.g. 'myservice.k-university.ai').
 */
export function configure(options = {}) {
  if ('baseDomain' in options) {
    settings.baseDomain = options.baseDomain ? normalizeDomain(options.baseDomain) : null;
  }
}

/**
 * Whether `value` is a tenant id the backend can accept.
 * @param {unknown} value
 * @returns {value is string}
 */
export function isValidTenantId(value) {
  return (
    typeof value === 'string' &&
    TENANT_ID_PATTERN.test(value) &&
    !RESERVED_NAMES.has(value) &&
    !value.startsWith('pg_')
  );
}

/** @param {unknown} value @returns {string | null} */
function validOrNull(value) {
  return isValidTenantId(value) ? value : null;
}

/**
 * Parses a `Cookie` header / `document.cookie` string. Values are URL-decoded (a
 * malformed escape keeps the raw value) and unquoted; for a name given more than
 * once the first value wins, as browsers list the most specific cookie first.
 * @param {string | null | undefined} cookie
 * @returns {Record<string, string>}
 */
export function parseCookies(cookie) {
  /** @type {Record<string, string>} */
  const out = Object.create(null);
  if (typeof cookie !== 'string' || cookie === '') return out;
  for (const part of cookie.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    const name = part.slice(0, eq).trim();
    if (name === '' || name in out) continue;
    let value = part.slice(eq + 1).trim();
    if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) {
      value = value.slice(1, -1);
    }
    try {
      value = decodeURIComponent(value);
    } catch {
      // Not valid percent-encoding: keep it as it is.
    }
    out[name] = value;
  }
  return out;
}

/**
 * The `?tenant=` value of a location, if it is a valid tenant id.
 * @param {string | { search?: string, href?: string } | null | undefined} location
 *   a URL string, a search string ('?tenant=univ_8'), `window.location` or a URL.
 * @returns {string | null}
 */
export function tenantFromQuery(location) {
  const search = searchOf(location);
  if (search === '') return null;
  return validOrNull(new URLSearchParams(search).get(TENANT_QUERY_PARAM));
}

/**
 * The `tenant_id` cookie, if it is a valid tenant id.
 * @param {string | null | undefined} cookie  `document.cookie` or a Cookie header.
 * @returns {string | null}
 */
export function tenantFromCookie(cookie) {
  return validOrNull(parseCookies(cookie)[TENANT_COOKIE]);
}

/**
 * The tenant named by the subdomain of `host` under `baseDomain`:
 * ('univ_8.myservice.k-university.ai:443', 'myservice.k-university.ai') → 'univ_8'.
 * The base domain itself, other domains, nested subdomains and invalid names → null.
 * @param {string | null | undefined} host  a host name, with or without a port.
 * @param {string | null | undefined} baseDomain
 * @returns {string | null}
 */
export function tenantFromHost(host, baseDomain) {
  if (typeof host !== 'string' || !baseDomain) return null;
  let name = host.trim().toLowerCase();
  if (name.startsWith('[')) return null; // IPv6 literal
  name = name.replace(/:\d*$/, '').replace(/\.+$/, '');
  const base = normalizeDomain(baseDomain);
  if (base === '' || !name.endsWith(`.${base}`)) return null;
  return validOrNull(name.slice(0, -(base.length + 1)));
}

/**
 * The tenant of the page: `?tenant=`, then the `tenant_id` cookie, then the
 * subdomain under `baseDomain`; null when none gives a valid tenant id.
 *
 * An omitted input (undefined) is read from the browser: `location` from
 * `window.location`, `cookie` from `document.cookie`, `baseDomain` from configure().
 * Pass null to leave a source out.
 *
 * @param {{
 *   location?: string | { search?: string, host?: string, hostname?: string, href?: string } | null,
 *   cookie?: string | null,
 *   baseDomain?: string | null,
 * }} [inputs]
 * @returns {string | null}
 */
export function resolveTenant(inputs = {}) {
  const location = inputs.location === undefined ? globalThis.location : inputs.location;
  const cookie = inputs.cookie === undefined ? globalThis.document?.cookie : inputs.cookie;
  const baseDomain = inputs.baseDomain === undefined ? settings.baseDomain : inputs.baseDomain;
  return (
    tenantFromQuery(location) ??
    tenantFromCookie(cookie) ??
    tenantFromHost(hostOf(location), baseDomain) ??
    null
  );
}

/**
 * The `Set-Cookie`-style string rememberTenant writes.
 * @param {string} tenantId
 * @param {{ secure?: boolean, maxAge?: number }} [options]
 * @returns {string}
 */
export function tenantCookie(tenantId, options = {}) {
  if (!isValidTenantId(tenantId)) {
    throw new TypeError(`invalid tenant id: ${JSON.stringify(tenantId)}`);
  }
  const maxAge = options.maxAge ?? TENANT_COOKIE_MAX_AGE;
  let cookie = `${TENANT_COOKIE}=${encodeURIComponent(tenantId)}; Path=/; Max-Age=${maxAge}; SameSite=Lax`;
  if (options.secure) cookie += '; Secure';
  return cookie;
}

/**
 * Stores the tenant in the `tenant_id` cookie (Path=/, SameSite=Lax, 30 days,
 * Secure on https) so later visits without `?tenant=` keep it.
 * @param {string} tenantId  throws a TypeError when it is not a valid tenant id.
 * @param {{ document?: { cookie: string }, location?: { protocol?: string }, secure?: boolean, maxAge?: number }} [options]
 *   document / location default to the browser's.
 * @returns {string} the cookie string (written only when a document is available).
 */
export function rememberTenant(tenantId, options = {}) {
  const location = options.location ?? globalThis.location;
  const cookie = tenantCookie(tenantId, {
    secure: options.secure ?? location?.protocol === 'https:',
    maxAge: options.maxAge,
  });
  const doc = options.document ?? globalThis.document;
  if (doc) doc.cookie = cookie;
  return cookie;
}

/**
 * Removes the `tenant_id` cookie.
 * @param {{ document?: { cookie: string } }} [options]
 * @returns {string} the cookie string written.
 */
export function forgetTenant(options = {}) {
  const cookie = `${TENANT_COOKIE}=; Path=/; Max-Age=0; SameSite=Lax`;
  const doc = options.document ?? globalThis.document;
  if (doc) doc.cookie = cookie;
  return cookie;
}

/**
 * The tenant of the current page (resolveTenant with the browser's inputs and the
 * configured base domain).
 * @returns {string | null}
 */
export function currentTenant() {
  return resolveTenant();
}

/**
 * A copy of `headers` with `X-Tenant-ID: tenant` added, unless a tenant header is
 * already there (an explicit header wins) or `tenant` is not a valid id.
 * @param {HeadersInit | Record<string, string> | undefined | null} headers
 * @param {string | null | undefined} tenant
 * @returns {Headers | Record<string, string>}  a Headers object where the runtime has one.
 */
export function withTenantHeader(headers, tenant) {
  const id = validOrNull(tenant);
  if (typeof globalThis.Headers === 'function') {
    const out = new globalThis.Headers(headers ?? undefined);
    if (id && !out.has(TENANT_HEADER)) out.set(TENANT_HEADER, id);
    return out;
  }
  /** @type {Record<string, string>} */
  const out = {};
  if (Array.isArray(headers)) {
    for (const [k, v] of headers) out[k] = v;
  } else if (headers) {
    Object.assign(out, headers);
  }
  if (id && !hasKey(out, TENANT_HEADER)) out[TENANT_HEADER] = id;
  return out;
}

/**
 * Builds a fetch wrapper that adds `X-Tenant-ID` and `credentials: 'include'`.
 * @param {{ fetch?: typeof fetch, getTenant?: () => string | null | undefined }} [options]
 *   fetch: the fetch to call (default: the global fetch, looked up on each call);
 *   getTenant: where the tenant comes from (default: currentTenant, on each call).
 * @returns {(input: RequestInfo | URL, init?: RequestInit) => Promise<Response>}
 */
export function createTenantFetch(options = {}) {
  const getTenant = options.getTenant ?? currentTenant;
  return function tenantFetch(input, init = {}) {
    const fetchImpl = options.fetch ?? globalThis.fetch;
    if (typeof fetchImpl !== 'function') {
      throw new TypeError('fetch is not available; pass { fetch } to createTenantFetch');
    }
    // fetch(request, { headers }) replaces the Request's own headers: start from them.
    const baseHeaders =
      init.headers ?? (isRequest(input) ? /** @type {Request} */ (input).headers : undefined);
    const request = {
      ...init,
      credentials: init.credentials ?? 'include',
      headers: withTenantHeader(baseHeaders, getTenant()),
    };
    return Reflect.apply(fetchImpl, options.fetch ? undefined : globalThis, [input, request]);
  };
}

/**
 * fetch with `X-Tenant-ID` (tenant of the current page) and `credentials: 'include'`.
 * An `X-Tenant-ID` or `credentials` given by the caller is kept.
 * @param {RequestInfo | URL} input
 * @param {RequestInit} [init]
 * @returns {Promise<Response>}
 */
export const tenantFetch = createTenantFetch();

/**
 * Adds `X-Tenant-ID` to every request of an axios instance (and `withCredentials:
 * true` unless the request sets it), through `interceptors.request.use`.
 * @param {{ interceptors: { request: { use: Function } } }} axiosInstance
 * @param {{ getTenant?: () => string | null | undefined, withCredentials?: boolean }} [options]
 *   getTenant: default currentTenant, called for every request;
 *   withCredentials: default true.
 * @returns {number} the interceptor id, for `axiosInstance.interceptors.request.eject(id)`.
 */
export function installAxiosInterceptor(axiosInstance, options = {}) {
  const use = axiosInstance?.interceptors?.request?.use;
  if (typeof use !== 'function') {
    throw new TypeError('installAxiosInterceptor expects an axios instance');
  }
  const getTenant = options.getTenant ?? currentTenant;
  const withCredentials = options.withCredentials ?? true;
  return use.call(axiosInstance.interceptors.request, (config) => {
    const next = config ?? {};
    if (withCredentials && next.withCredentials === undefined) next.withCredentials = true;
    const tenant = validOrNull(getTenant());
    if (tenant) {
      next.headers ??= {};
      const headers = next.headers;
      if (typeof headers.set === 'function' && typeof headers.has === 'function') {
        // axios >= 1: AxiosHeaders
        if (!headers.has(TENANT_HEADER)) headers.set(TENANT_HEADER, tenant);
      } else if (!hasKey(headers, TENANT_HEADER)) {
        headers[TENANT_HEADER] = tenant;
      }
    }
    return next;
  });
}

// ---------------------------------------------------------------------------

/** @param {string} domain */
function normalizeDomain(domain) {
  return String(domain)
    .trim()
    .toLowerCase()
    .replace(/:\d*$/, '')
    .replace(/^\.+|\.+$/g, '');
}

/** @param {Record<string, unknown>} obj @param {string} name */
function hasKey(obj, name) {
  const lower = name.toLowerCase();
  return Object.keys(obj).some((k) => k.toLowerCase() === lower);
}

/** @param {unknown} input */
function isRequest(input) {
  return typeof globalThis.Request === 'function' && input instanceof globalThis.Request;
}

/** @param {unknown} location @returns {string} */
function searchOf(location) {
  if (location == null) return '';
  if (typeof location === 'string') {
    const hash = location.indexOf('#');
    const url = hash < 0 ? location : location.slice(0, hash);
    const q = url.indexOf('?');
    return q < 0 ? '' : url.slice(q);
  }
  if (typeof location === 'object') {
    const loc = /** @type {{ search?: unknown, href?: unknown }} */ (location);
    if (typeof loc.search === 'string') return loc.search;
    if (typeof loc.href === 'string') return searchOf(loc.href);
  }
  return '';
}

/** @param {unknown} location @returns {string | null} */
function hostOf(location) {
  if (location == null) return null;
  if (typeof location === 'string') {
    try {
      return new URL(location).host || null;
    } catch {
      return null; // a relative URL or a bare search string has no host
    }
  }
  if (typeof location === 'object') {
    const loc = /** @type {{ host?: unknown, hostname?: unknown, href?: unknown }} */ (location);
    if (typeof loc.host === 'string' && loc.host !== '') return loc.host;
    if (typeof loc.hostname === 'string' && loc.hostname !== '') return loc.hostname;
    if (typeof loc.href === 'string') return hostOf(loc.href);
  }
  return null;
}

const MtpaasTenant = Object.freeze({
  TENANT_HEADER,
  TENANT_COOKIE,
  TENANT_QUERY_PARAM,
  TENANT_ID_PATTERN,
  TENANT_COOKIE_MAX_AGE,
  configure,
  isValidTenantId,
  parseCookies,
  tenantFromQuery,
  tenantFromCookie,
  tenantFromHost,
  resolveTenant,
  tenantCookie,
  rememberTenant,
  forgetTenant,
  currentTenant,
  withTenantHeader,
  createTenantFetch,
  tenantFetch,
  installAxiosInterceptor,
});

export default MtpaasTenant;

// For pages that load this file with <script type="module" src="…"> and use it from
// classic scripts (module scripts run before DOMContentLoaded).
if (typeof window !== 'undefined' && window !== null && typeof window === 'object' && !window.MtpaasTenant) {
  window.MtpaasTenant = MtpaasTenant;
}
