import { describe, it, afterEach } from 'node:test';
import assert from 'node:assert/strict';

import { installAxiosInterceptor } from '../mtpaas-tenant.js';

/** The part of axios that interceptors use: an InterceptorManager that relies on `this`. */
class FakeInterceptorManager {
  constructor() {
    this.handlers = [];
  }
  use(fulfilled, rejected) {
    this.handlers.push({ fulfilled, rejected });
    return this.handlers.length - 1;
  }
  eject(id) {
    this.handlers[id] = null;
  }
}

/** axios >= 1 passes headers as an AxiosHeaders object: case-insensitive has/set. */
class FakeAxiosHeaders {
  constructor(init = {}) {
    this.map = new Map(Object.entries(init).map(([k, v]) => [k.toLowerCase(), v]));
  }
  has(name) {
    return this.map.has(name.toLowerCase());
  }
  set(name, value) {
    this.map.set(name.toLowerCase(), value);
    return this;
  }
  get(name) {
    return this.map.get(name.toLowerCase());
  }
}

function fakeAxios({ axiosHeaders = true } = {}) {
  const instance = {
    interceptors: { request: new FakeInterceptorManager(), response: new FakeInterceptorManager() },
    sent: [],
    /** Runs the request interceptors like axios does, then records the config. */
    async request(config) {
      let c = {
        ...config,
        headers: axiosHeaders ? new FakeAxiosHeaders(config.headers) : { ...(config.headers ?? {}) },
      };
      for (const h of [...this.interceptors.request.handlers].reverse()) {
        if (h) c = await h.fulfilled(c);
      }
      this.sent.push(c);
      return c;
    },
    get(url, config = {}) {
      return this.request({ ...config, method: 'get', url });
    },
  };
  return instance;
}

describe('installAxiosInterceptor', () => {
  afterEach(() => {
    delete globalThis.location;
    delete globalThis.document;
  });

  it('registers one request interceptor and returns its id', () => {
    const axios = fakeAxios();
    const id = installAxiosInterceptor(axios, { getTenant: () => 'univ_8' });
    assert.equal(id, 0);
    assert.equal(axios.interceptors.request.handlers.length, 1);
    assert.equal(axios.interceptors.response.handlers.length, 0);
  });

  it('adds X-Tenant-ID (AxiosHeaders) and withCredentials', async () => {
    const axios = fakeAxios();
    installAxiosInterceptor(axios, { getTenant: () => 'univ_8' });
    const sent = await axios.get('/api/users', { headers: { Accept: 'application/json' } });
    assert.equal(sent.headers.get('X-Tenant-ID'), 'univ_8');
    assert.equal(sent.headers.get('Accept'), 'application/json');
    assert.equal(sent.withCredentials, true);
    assert.equal(sent.url, '/api/users');
  });

  it('adds X-Tenant-ID to plain-object headers (older axios)', async () => {
    const axios = fakeAxios({ axiosHeaders: false });
    installAxiosInterceptor(axios, { getTenant: () => 'univ_8' });
    const sent = await axios.get('/api/users', { headers: { Accept: 'application/json' } });
    assert.deepEqual(sent.headers, { Accept: 'application/json', 'X-Tenant-ID': 'univ_8' });
  });

  it('creates headers when the config has none', async () => {
    const axios = fakeAxios({ axiosHeaders: false });
    installAxiosInterceptor(axios, { getTenant: () => 'univ_8' });
    const handler = axios.interceptors.request.handlers[0].fulfilled;
    assert.deepEqual(handler({ url: '/api/users' }).headers, { 'X-Tenant-ID': 'univ_8' });
  });

  it('keeps an X-Tenant-ID set on the request, in any case', async () => {
    const axios = fakeAxios();
    installAxiosInterceptor(axios, { getTenant: () => 'univ_8' });
    const sent = await axios.get('/api/users', { headers: { 'x-tenant-id': 'univ_9' } });
    assert.equal(sent.headers.get('X-Tenant-ID'), 'univ_9');

    const plain = fakeAxios({ axiosHeaders: false });
    installAxiosInterceptor(plain, { getTenant: () => 'univ_8' });
    const sentPlain = await plain.get('/api/users', { headers: { 'X-TENANT-ID': 'univ_9' } });
    assert.deepEqual(sentPlain.headers, { 'X-TENANT-ID': 'univ_9' });
  });

  it('keeps an explicit withCredentials: false, and can be told not to set it', async () => {
    const axios = fakeAxios();
    installAxiosInterceptor(axios, { getTenant: () => 'univ_8' });
    assert.equal((await axios.get('/api/users', { withCredentials: false })).withCredentials, false);

    const other = fakeAxios();
    installAxiosInterceptor(other, { getTenant: () => 'univ_8', withCredentials: false });
    assert.equal((await other.get('/api/users')).withCredentials, undefined);
  });

  it('sends no header without a valid tenant', async () => {
    for (const tenant of [null, undefined, '', 'Univ_8', 'pg_x']) {
      const axios = fakeAxios();
      installAxiosInterceptor(axios, { getTenant: () => tenant });
      const sent = await axios.get('/api/health');
      assert.equal(sent.headers.has('X-Tenant-ID'), false, String(tenant));
    }
  });

  it('resolves the tenant for every request', async () => {
    const axios = fakeAxios();
    let tenant = 'univ_1';
    installAxiosInterceptor(axios, { getTenant: () => tenant });
    await axios.get('/api/users');
    tenant = 'univ_2';
    await axios.get('/api/users');
    assert.deepEqual(
      axios.sent.map((c) => c.headers.get('X-Tenant-ID')),
      ['univ_1', 'univ_2'],
    );
  });

  it('defaults to the tenant of the page', async () => {
    globalThis.location = new URL('https://myservice.k-university.ai/?tenant=univ_8');
    globalThis.document = { cookie: 'tenant_id=univ_2' };
    const axios = fakeAxios();
    installAxiosInterceptor(axios);
    const sent = await axios.get('/api/users');
    assert.equal(sent.headers.get('X-Tenant-ID'), 'univ_8');
  });

  it('can be ejected with the returned id', async () => {
    const axios = fakeAxios();
    const id = installAxiosInterceptor(axios, { getTenant: () => 'univ_8' });
    axios.interceptors.request.eject(id);
    const sent = await axios.get('/api/users');
    assert.equal(sent.headers.has('X-Tenant-ID'), false);
  });

  it('refuses something that is not an axios instance', () => {
    for (const bad of [null, undefined, {}, { interceptors: {} }, { interceptors: { request: {} } }]) {
      assert.throws(() => installAxiosInterceptor(bad), TypeError);
    }
  });
});
