import { describe, it, afterEach } from 'node:test';
import assert from 'node:assert/strict';

import { configure, createTenantFetch, tenantFetch, withTenantHeader } from '../mtpaas-tenant.js';

/** A fetch that records its arguments and answers 200. */
function recordingFetch() {
  const calls = [];
  const fetch = async (input, init) => {
    calls.push({ input, init });
    return new Response('{}', { status: 200, headers: { 'content-type': 'application/json' } });
  };
  return { fetch, calls };
}

describe('createTenantFetch', () => {
  it('adds X-Tenant-ID and credentials: include', async () => {
    const { fetch, calls } = recordingFetch();
    const f = createTenantFetch({ fetch, getTenant: () => 'univ_8' });
    const res = await f('/api/users');
    assert.equal(res.status, 200);
    assert.equal(calls.length, 1);
    assert.equal(calls[0].input, '/api/users');
    assert.equal(calls[0].init.credentials, 'include');
    assert.equal(calls[0].init.headers.get('X-Tenant-ID'), 'univ_8');
  });

  it('keeps the caller’s options and headers in every form', async () => {
    const { fetch, calls } = recordingFetch();
    const f = createTenantFetch({ fetch, getTenant: () => 'univ_8' });
    const body = JSON.stringify({ message: 'hi' });

    await f('/api/chat', { method: 'POST', body, headers: { 'Content-Type': 'application/json' } });
    await f('/api/chat', { headers: [['Accept', 'application/json']] });
    await f('/api/chat', { headers: new Headers({ Authorization: 'Bearer t' }) });

    assert.equal(calls[0].init.method, 'POST');
    assert.equal(calls[0].init.body, body);
    assert.equal(calls[0].init.headers.get('content-type'), 'application/json');
    assert.equal(calls[0].init.headers.get('x-tenant-id'), 'univ_8');
    assert.equal(calls[1].init.headers.get('accept'), 'application/json');
    assert.equal(calls[1].init.headers.get('x-tenant-id'), 'univ_8');
    assert.equal(calls[2].init.headers.get('authorization'), 'Bearer t');
    assert.equal(calls[2].init.headers.get('x-tenant-id'), 'univ_8');
  });

  it('does not modify the caller’s init or headers', async () => {
    const { fetch } = recordingFetch();
    const f = createTenantFetch({ fetch, getTenant: () => 'univ_8' });
    const headers = { Accept: 'application/json' };
    const init = { headers };
    await f('/api/users', init);
    assert.deepEqual(init, { headers: { Accept: 'application/json' } });
    assert.equal(init.credentials, undefined);
  });

  it('keeps an explicit X-Tenant-ID (any case) and explicit credentials', async () => {
    const { fetch, calls } = recordingFetch();
    const f = createTenantFetch({ fetch, getTenant: () => 'univ_8' });
    await f('/api/users', { headers: { 'x-tenant-id': 'univ_9' }, credentials: 'same-origin' });
    assert.equal(calls[0].init.headers.get('X-Tenant-ID'), 'univ_9');
    assert.equal(calls[0].init.credentials, 'same-origin');
  });

  it('sends no tenant header when there is no valid tenant', async () => {
    const { fetch, calls } = recordingFetch();
    for (const tenant of [null, undefined, '', 'Bad-Id', 'public']) {
      await createTenantFetch({ fetch, getTenant: () => tenant })('/api/health');
    }
    for (const call of calls) {
      assert.equal(call.init.headers.has('X-Tenant-ID'), false);
      assert.equal(call.init.credentials, 'include');
    }
  });

  it('asks for the tenant on every call', async () => {
    const { fetch, calls } = recordingFetch();
    let tenant = 'univ_1';
    const f = createTenantFetch({ fetch, getTenant: () => tenant });
    await f('/api/users');
    tenant = 'univ_2';
    await f('/api/users');
    assert.deepEqual(
      calls.map((c) => c.init.headers.get('X-Tenant-ID')),
      ['univ_1', 'univ_2'],
    );
  });

  it('keeps the headers of a Request input', async () => {
    const { fetch, calls } = recordingFetch();
    const f = createTenantFetch({ fetch, getTenant: () => 'univ_8' });
    const request = new Request('http://127.0.0.1:8085/api/users', { headers: { Accept: 'text/plain' } });
    await f(request);
    assert.equal(calls[0].input, request);
    assert.equal(calls[0].init.headers.get('accept'), 'text/plain');
    assert.equal(calls[0].init.headers.get('x-tenant-id'), 'univ_8');
    // What fetch would send: the Request merged with init.
    const sent = new Request(calls[0].input, calls[0].init);
    assert.equal(sent.headers.get('accept'), 'text/plain');
    assert.equal(sent.headers.get('x-tenant-id'), 'univ_8');
    assert.equal(sent.credentials, 'include');
  });

  it('passes a URL input through', async () => {
    const { fetch, calls } = recordingFetch();
    const url = new URL('http://127.0.0.1:8085/api/chat');
    await createTenantFetch({ fetch, getTenant: () => 'univ_8' })(url);
    assert.equal(calls[0].input, url);
  });

  it('propagates the fetch result and its errors', async () => {
    const boom = new TypeError('network down');
    const f = createTenantFetch({ fetch: async () => Promise.reject(boom), getTenant: () => 'univ_8' });
    await assert.rejects(f('/api/users'), boom);
  });
});

describe('tenantFetch (browser globals)', () => {
  const savedFetch = globalThis.fetch;
  afterEach(() => {
    globalThis.fetch = savedFetch;
    delete globalThis.location;
    delete globalThis.document;
    configure({ baseDomain: null });
  });

  it('uses the global fetch and the tenant of the page', async () => {
    const { fetch, calls } = recordingFetch();
    globalThis.fetch = fetch;
    globalThis.location = new URL('https://univ_8.myservice.k-university.ai/chat');
    globalThis.document = { cookie: '' };
    configure({ baseDomain: 'myservice.k-university.ai' });
    await tenantFetch('/api/chat', { method: 'GET' });
    assert.equal(calls[0].init.headers.get('X-Tenant-ID'), 'univ_8');
    assert.equal(calls[0].init.credentials, 'include');
    assert.equal(calls[0].init.method, 'GET');
  });

  it('looks the global fetch up on each call', async () => {
    const first = recordingFetch();
    const second = recordingFetch();
    globalThis.document = { cookie: 'tenant_id=univ_5' };
    globalThis.fetch = first.fetch;
    await tenantFetch('/api/users');
    globalThis.fetch = second.fetch;
    await tenantFetch('/api/users');
    assert.equal(first.calls.length, 1);
    assert.equal(second.calls.length, 1);
    assert.equal(second.calls[0].init.headers.get('X-Tenant-ID'), 'univ_5');
  });

  it('sends no tenant header when the page has no tenant', async () => {
    const { fetch, calls } = recordingFetch();
    globalThis.fetch = fetch;
    await tenantFetch('/api/health');
    assert.equal(calls[0].init.headers.has('X-Tenant-ID'), false);
  });

  it('throws a clear error without any fetch', () => {
    globalThis.fetch = undefined;
    assert.throws(() => tenantFetch('/api/health'), /fetch is not available/);
  });
});

describe('withTenantHeader', () => {
  it('adds the header to a copy', () => {
    const original = new Headers({ Accept: 'application/json' });
    const out = withTenantHeader(original, 'univ_8');
    assert.equal(out.get('X-Tenant-ID'), 'univ_8');
    assert.equal(original.has('X-Tenant-ID'), false);
  });

  it('works without a Headers class (plain objects)', () => {
    const saved = globalThis.Headers;
    try {
      globalThis.Headers = undefined;
      assert.deepEqual(withTenantHeader({ Accept: 'a' }, 'univ_8'), { Accept: 'a', 'X-Tenant-ID': 'univ_8' });
      assert.deepEqual(withTenantHeader([['Accept', 'a']], 'univ_8'), { Accept: 'a', 'X-Tenant-ID': 'univ_8' });
      assert.deepEqual(withTenantHeader({ 'x-tenant-id': 'univ_9' }, 'univ_8'), { 'x-tenant-id': 'univ_9' });
      assert.deepEqual(withTenantHeader(undefined, 'Bad'), {});
    } finally {
      globalThis.Headers = saved;
    }
  });
});
