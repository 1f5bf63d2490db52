import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';

describe('window.MtpaasTenant', () => {
  after(() => {
    delete globalThis.window;
  });

  it('is not created outside a browser', async () => {
    const mod = await import('../mtpaas-tenant.js?outside-browser');
    assert.equal(globalThis.MtpaasTenant, undefined);
    assert.equal(typeof mod.default.resolveTenant, 'function');
  });

  it('is set when the module loads in a browser', async () => {
    globalThis.window = {};
    const mod = await import('../mtpaas-tenant.js?in-browser');
    assert.equal(globalThis.window.MtpaasTenant, mod.default);
    assert.equal(Object.isFrozen(mod.default), true);
    for (const name of [
      'resolveTenant',
      'rememberTenant',
      'forgetTenant',
      'tenantFetch',
      'createTenantFetch',
      'installAxiosInterceptor',
      'configure',
      'isValidTenantId',
    ]) {
      assert.equal(typeof mod.default[name], 'function', name);
      assert.equal(mod.default[name], mod[name], name);
    }
    assert.equal(
      mod.default.resolveTenant({ location: '?tenant=univ_8', cookie: null, baseDomain: null }),
      'univ_8',
    );
  });

  it('does not replace an existing window.MtpaasTenant', async () => {
    const existing = { mine: true };
    globalThis.window = { MtpaasTenant: existing };
    await import('../mtpaas-tenant.js?already-there');
    assert.equal(globalThis.window.MtpaasTenant, existing);
  });
});
