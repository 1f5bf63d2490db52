import { describe, it, afterEach } from 'node:test';
import assert from 'node:assert/strict';

import {
  configure,
  currentTenant,
  isValidTenantId,
  resolveTenant,
  tenantFromHost,
  tenantFromQuery,
} from '../mtpaas-tenant.js';

const BASE = 'myservice.k-university.ai';

describe('isValidTenantId', () => {
  it('accepts the tenant id grammar', () => {
    for (const id of ['univ_8', 'demo_7', 'a', 'x9', 'test_univ', 'a'.repeat(50), 'hltutor']) {
      assert.equal(isValidTenantId(id), true, id);
    }
  });

  it('refuses everything else', () => {
    const bad = [
      '',
      '8univ', // must start with a letter
      '_univ',
      'Univ_8', // lower case only
      'univ-8',
      'univ.8',
      'univ 8',
      ' univ_8',
      'univ_8\n',
      'a'.repeat(51), // 50 characters at most
      'ünîv',
      'public',
      'information_schema',
      'pg_catalog',
      'pg_temp_1',
      null,
      undefined,
      8,
      {},
      ['univ_8'],
    ];
    for (const id of bad) assert.equal(isValidTenantId(id), false, JSON.stringify(id));
  });
});

describe('tenantFromQuery', () => {
  it('reads ?tenant= from a URL string, a search string, a URL and a Location-like object', () => {
    assert.equal(tenantFromQuery('https://myservice.k-university.ai/?tenant=univ_8'), 'univ_8');
    assert.equal(tenantFromQuery('/chat?x=1&tenant=univ_8&y=2'), 'univ_8');
    assert.equal(tenantFromQuery('?tenant=univ_8'), 'univ_8');
    assert.equal(tenantFromQuery(new URL('https://h.example/p?tenant=demo_7')), 'demo_7');
    assert.equal(tenantFromQuery({ search: '?tenant=univ_9', host: 'ignored' }), 'univ_9');
    assert.equal(tenantFromQuery({ href: 'https://h.example/?tenant=univ_10' }), 'univ_10');
  });

  it('decodes the parameter and takes the first of several', () => {
    assert.equal(tenantFromQuery('?tenant=univ%5F8'), 'univ_8');
    assert.equal(tenantFromQuery('?tenant=univ_1&tenant=univ_2'), 'univ_1');
  });

  it('ignores the fragment', () => {
    assert.equal(tenantFromQuery('https://h.example/#/x?tenant=univ_8'), null);
    assert.equal(tenantFromQuery('https://h.example/?tenant=univ_8#frag'), 'univ_8');
  });

  it('returns null when absent, empty or invalid', () => {
    assert.equal(tenantFromQuery('https://h.example/'), null);
    assert.equal(tenantFromQuery('?tenants=univ_8'), null);
    assert.equal(tenantFromQuery('?tenant='), null);
    assert.equal(tenantFromQuery('?tenant'), null);
    assert.equal(tenantFromQuery('?tenant=UNIV_8'), null);
    assert.equal(tenantFromQuery('?tenant=univ-8'), null);
    assert.equal(tenantFromQuery('?tenant=public'), null);
    assert.equal(tenantFromQuery('?tenant=univ_8%27%3B--'), null);
    assert.equal(tenantFromQuery(null), null);
    assert.equal(tenantFromQuery(undefined), null);
    assert.equal(tenantFromQuery({}), null);
  });
});

describe('tenantFromHost', () => {
  it('takes the subdomain under the base domain', () => {
    assert.equal(tenantFromHost(`univ_8.${BASE}`, BASE), 'univ_8');
  });

  it('ignores a port', () => {
    assert.equal(tenantFromHost(`univ_8.${BASE}:443`, BASE), 'univ_8');
    assert.equal(tenantFromHost('univ_8.localhost:5173', 'localhost'), 'univ_8');
  });

  it('is case-insensitive and tolerates a trailing dot', () => {
    assert.equal(tenantFromHost(`UNIV_8.MyService.K-University.AI`, BASE), 'univ_8');
    assert.equal(tenantFromHost(`univ_8.${BASE}.`, BASE), 'univ_8');
    assert.equal(tenantFromHost(`univ_8.${BASE}`, `.${BASE.toUpperCase()}.`), 'univ_8');
  });

  it('returns null for the base domain itself', () => {
    assert.equal(tenantFromHost(BASE, BASE), null);
    assert.equal(tenantFromHost(`${BASE}:443`, BASE), null);
    assert.equal(tenantFromHost(`.${BASE}`, BASE), null);
  });

  it('returns null for other domains and look-alikes', () => {
    assert.equal(tenantFromHost('univ_8.example.com', BASE), null);
    assert.equal(tenantFromHost(`univ_8${BASE}`, BASE), null); // no dot before the base
    assert.equal(tenantFromHost(`univ_8.evil-${BASE}`, BASE), null);
    assert.equal(tenantFromHost(`univ_8.${BASE}.evil.com`, BASE), null);
  });

  it('returns null for nested or invalid subdomains', () => {
    assert.equal(tenantFromHost(`a.univ_8.${BASE}`, BASE), null);
    assert.equal(tenantFromHost(`www-2.${BASE}`, BASE), null);
    assert.equal(tenantFromHost(`8univ.${BASE}`, BASE), null);
    assert.equal(tenantFromHost(`pg_catalog.${BASE}`, BASE), null);
  });

  it('returns null without a host or a base domain', () => {
    assert.equal(tenantFromHost(`univ_8.${BASE}`, null), null);
    assert.equal(tenantFromHost(`univ_8.${BASE}`, ''), null);
    assert.equal(tenantFromHost(null, BASE), null);
    assert.equal(tenantFromHost('', BASE), null);
    assert.equal(tenantFromHost('[::1]:8080', BASE), null);
  });
});

describe('resolveTenant', () => {
  const all = {
    location: `https://univ_3.${BASE}/chat?tenant=univ_1`,
    cookie: 'tenant_id=univ_2',
    baseDomain: BASE,
  };

  it('prefers ?tenant= over the cookie and the subdomain', () => {
    assert.equal(resolveTenant(all), 'univ_1');
  });

  it('uses the cookie when there is no ?tenant=', () => {
    assert.equal(resolveTenant({ ...all, location: `https://univ_3.${BASE}/chat` }), 'univ_2');
  });

  it('uses the subdomain when there is neither ?tenant= nor a cookie', () => {
    assert.equal(resolveTenant({ ...all, location: `https://univ_3.${BASE}/chat`, cookie: '' }), 'univ_3');
    assert.equal(
      resolveTenant({ ...all, location: { search: '', host: `univ_3.${BASE}:8443` }, cookie: 'other=1' }),
      'univ_3',
    );
  });

  it('returns null when no source names a tenant', () => {
    assert.equal(resolveTenant({ location: `https://${BASE}/`, cookie: 'a=b', baseDomain: BASE }), null);
    assert.equal(resolveTenant({ location: null, cookie: null, baseDomain: null }), null);
  });

  it('skips an invalid value and falls through to the next source', () => {
    assert.equal(resolveTenant({ ...all, location: `https://univ_3.${BASE}/?tenant=Bad-Id` }), 'univ_2');
    assert.equal(
      resolveTenant({ ...all, location: `https://univ_3.${BASE}/?tenant=public`, cookie: 'tenant_id=x%ZZ' }),
      'univ_3',
    );
    assert.equal(
      resolveTenant({ location: `https://a.b.${BASE}/?tenant=`, cookie: 'tenant_id=', baseDomain: BASE }),
      null,
    );
  });

  it('uses the subdomain only under the base domain given', () => {
    const location = `https://univ_3.${BASE}/`;
    assert.equal(resolveTenant({ location, cookie: null, baseDomain: null }), null);
    assert.equal(resolveTenant({ location, cookie: null, baseDomain: 'other.example' }), null);
  });

  it('accepts a search string as location (no host, so no subdomain)', () => {
    assert.equal(resolveTenant({ location: '?tenant=univ_5', cookie: null, baseDomain: BASE }), 'univ_5');
    assert.equal(resolveTenant({ location: '?x=1', cookie: null, baseDomain: BASE }), null);
  });
});

describe('resolveTenant with the browser globals', () => {
  afterEach(() => {
    delete globalThis.location;
    delete globalThis.document;
    configure({ baseDomain: null });
  });

  it('has nothing to read outside a browser', () => {
    assert.equal(resolveTenant(), null);
    assert.equal(currentTenant(), null);
  });

  it('reads location and document.cookie when they are omitted', () => {
    globalThis.location = new URL(`https://univ_3.${BASE}/?x=1`);
    globalThis.document = { cookie: 'a=1; tenant_id=univ_2' };
    configure({ baseDomain: BASE });
    assert.equal(resolveTenant(), 'univ_2');
    assert.equal(currentTenant(), 'univ_2');
    globalThis.document.cookie = '';
    assert.equal(currentTenant(), 'univ_3');
    globalThis.location = new URL(`https://univ_3.${BASE}/?tenant=univ_1`);
    assert.equal(currentTenant(), 'univ_1');
  });

  it('an explicit null leaves a source out; explicit inputs win over the globals', () => {
    globalThis.location = new URL(`https://univ_3.${BASE}/?tenant=univ_1`);
    globalThis.document = { cookie: 'tenant_id=univ_2' };
    configure({ baseDomain: BASE });
    assert.equal(resolveTenant({ location: null }), 'univ_2');
    assert.equal(resolveTenant({ location: null, cookie: null }), null);
    assert.equal(resolveTenant({ location: `https://univ_3.${BASE}/`, cookie: null }), 'univ_3');
    assert.equal(resolveTenant({ location: `https://univ_3.${BASE}/`, cookie: null, baseDomain: null }), null);
  });

  it('configure() normalizes the base domain and can clear it', () => {
    globalThis.location = { search: '', host: `univ_4.${BASE}` };
    configure({ baseDomain: ` .MyService.K-University.AI. ` });
    assert.equal(currentTenant(), 'univ_4');
    configure({ baseDomain: null });
    assert.equal(currentTenant(), null);
    configure({ baseDomain: BASE });
    configure({}); // leaves it as it is
    assert.equal(currentTenant(), 'univ_4');
  });
});
