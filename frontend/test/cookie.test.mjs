import { describe, it, afterEach } from 'node:test';
import assert from 'node:assert/strict';

import {
  TENANT_COOKIE_MAX_AGE,
  forgetTenant,
  parseCookies,
  rememberTenant,
  tenantCookie,
  tenantFromCookie,
} from '../mtpaas-tenant.js';

/** A document whose cookie setter records what is written, as a browser receives it. */
function fakeDocument(initial = '') {
  const writes = [];
  return {
    writes,
    get cookie() {
      return initial;
    },
    set cookie(value) {
      writes.push(value);
    },
  };
}

describe('parseCookies', () => {
  it('parses several cookies with the usual spacing', () => {
    assert.deepEqual(
      { ...parseCookies('session=abc; tenant_id=univ_8;theme=dark ;  lang = ko') },
      { session: 'abc', tenant_id: 'univ_8', theme: 'dark', lang: 'ko' },
    );
  });

  it('URL-decodes values and strips quotes', () => {
    const c = parseCookies('tenant_id=univ%5F8; name=%ED%95%9C%EA%B8%80; q="quoted"; eq=a%3Db');
    assert.equal(c.tenant_id, 'univ_8');
    assert.equal(c.name, '한글');
    assert.equal(c.q, 'quoted');
    assert.equal(c.eq, 'a=b');
  });

  it('keeps a value whose percent-encoding is malformed', () => {
    assert.equal(parseCookies('tenant_id=univ%E0%A4%A; x=1').tenant_id, 'univ%E0%A4%A');
    assert.equal(parseCookies('tenant_id=%').tenant_id, '%');
  });

  it('keeps the first of duplicate names', () => {
    assert.equal(parseCookies('tenant_id=univ_1; tenant_id=univ_2').tenant_id, 'univ_1');
  });

  it('keeps "=" inside values and skips parts without a name or "="', () => {
    const c = parseCookies('token=a=b=c; flag; =orphan; ;');
    assert.equal(c.token, 'a=b=c');
    assert.equal('flag' in c, false);
    assert.equal('' in c, false);
  });

  it('returns an empty object for empty or missing input, without prototype keys', () => {
    assert.deepEqual({ ...parseCookies('') }, {});
    assert.deepEqual({ ...parseCookies(null) }, {});
    assert.deepEqual({ ...parseCookies(undefined) }, {});
    assert.equal(parseCookies('a=1').toString, undefined);
    assert.equal(parseCookies('__proto__=x').__proto__, 'x');
  });
});

describe('tenantFromCookie', () => {
  it('finds tenant_id among other cookies', () => {
    assert.equal(tenantFromCookie('a=1; tenant_id=univ_8; b=2'), 'univ_8');
    assert.equal(tenantFromCookie('tenant_id=univ%5f8'), 'univ_8');
  });

  it('does not confuse similar names', () => {
    assert.equal(tenantFromCookie('my_tenant_id=univ_8; tenant_idx=univ_9'), null);
    assert.equal(tenantFromCookie('TENANT_ID=univ_8'), null);
  });

  it('ignores invalid values', () => {
    for (const cookie of [
      'tenant_id=',
      'tenant_id=Univ_8',
      'tenant_id=univ-8',
      'tenant_id=univ%208',
      'tenant_id=public',
      'tenant_id=pg_toast',
      `tenant_id=${'a'.repeat(51)}`,
      'tenant_id=univ%E0%A4%A',
      '',
    ]) {
      assert.equal(tenantFromCookie(cookie), null, cookie);
    }
  });

  it('takes the first tenant_id even when it is invalid (like the server)', () => {
    assert.equal(tenantFromCookie('tenant_id=Bad; tenant_id=univ_8'), null);
  });
});

describe('tenantCookie', () => {
  it('builds a 30-day, site-wide, SameSite=Lax cookie', () => {
    assert.equal(TENANT_COOKIE_MAX_AGE, 2592000);
    assert.equal(tenantCookie('univ_8'), 'tenant_id=univ_8; Path=/; Max-Age=2592000; SameSite=Lax');
    assert.equal(tenantCookie('univ_8', { secure: true }), 'tenant_id=univ_8; Path=/; Max-Age=2592000; SameSite=Lax; Secure');
    assert.equal(tenantCookie('univ_8', { maxAge: 60 }), 'tenant_id=univ_8; Path=/; Max-Age=60; SameSite=Lax');
  });

  it('throws on an invalid tenant id', () => {
    for (const id of ['', 'Univ', 'a;b', 'univ_8; Domain=evil.com', null, undefined, 'public']) {
      assert.throws(() => tenantCookie(id), TypeError, String(id));
    }
  });
});

describe('rememberTenant', () => {
  afterEach(() => {
    delete globalThis.document;
    delete globalThis.location;
  });

  it('writes the cookie with Secure on https', () => {
    const document = fakeDocument();
    const written = rememberTenant('univ_8', { document, location: { protocol: 'https:' } });
    assert.deepEqual(document.writes, ['tenant_id=univ_8; Path=/; Max-Age=2592000; SameSite=Lax; Secure']);
    assert.equal(written, document.writes[0]);
  });

  it('writes the cookie without Secure on http', () => {
    const document = fakeDocument();
    rememberTenant('univ_8', { document, location: { protocol: 'http:' } });
    assert.deepEqual(document.writes, ['tenant_id=univ_8; Path=/; Max-Age=2592000; SameSite=Lax']);
  });

  it('lets the caller force Secure and the lifetime', () => {
    const document = fakeDocument();
    rememberTenant('univ_8', { document, location: { protocol: 'http:' }, secure: true, maxAge: 3600 });
    assert.deepEqual(document.writes, ['tenant_id=univ_8; Path=/; Max-Age=3600; SameSite=Lax; Secure']);
  });

  it('uses the browser document and location by default', () => {
    globalThis.document = fakeDocument();
    globalThis.location = new URL('https://univ_8.myservice.k-university.ai/');
    rememberTenant('univ_8');
    assert.deepEqual(globalThis.document.writes, ['tenant_id=univ_8; Path=/; Max-Age=2592000; SameSite=Lax; Secure']);
  });

  it('throws on an invalid id and writes nothing', () => {
    const document = fakeDocument();
    assert.throws(() => rememberTenant('../etc', { document }), TypeError);
    assert.throws(() => rememberTenant('univ_8; Domain=evil.com', { document }), TypeError);
    assert.deepEqual(document.writes, []);
  });

  it('returns the cookie without a document (server-side rendering)', () => {
    assert.equal(rememberTenant('univ_8'), 'tenant_id=univ_8; Path=/; Max-Age=2592000; SameSite=Lax');
  });

  it('round-trips through tenantFromCookie', () => {
    const document = fakeDocument();
    rememberTenant('demo_7', { document });
    const [nameValue] = document.writes[0].split(';');
    assert.equal(tenantFromCookie(`other=1; ${nameValue}`), 'demo_7');
  });
});

describe('forgetTenant', () => {
  it('expires the cookie', () => {
    const document = fakeDocument('tenant_id=univ_8');
    assert.equal(forgetTenant({ document }), 'tenant_id=; Path=/; Max-Age=0; SameSite=Lax');
    assert.deepEqual(document.writes, ['tenant_id=; Path=/; Max-Age=0; SameSite=Lax']);
  });
});
