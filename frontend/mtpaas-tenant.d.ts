// Types for mtpaas-tenant.js.

export declare const TENANT_HEADER: 'X-Tenant-ID';
export declare const TENANT_COOKIE: 'tenant_id';
export declare const TENANT_QUERY_PARAM: 'tenant';
export declare const TENANT_ID_PATTERN: RegExp;
export declare const TENANT_COOKIE_MAX_AGE: number;

export interface LocationLike {
  search?: string;
  host?: string;
  hostname?: string;
  href?: string;
  protocol?: string;
}

export interface ResolveInputs {
  /** A URL string, a search string, window.location or a URL; null leaves query and subdomain out. */
  location?: string | LocationLike | URL | null;
  /** document.cookie or a Cookie header; null leaves the cookie out. */
  cookie?: string | null;
  /** e.g. 'myservice.k-university.ai'; null leaves the subdomain out. */
  baseDomain?: string | null;
}

export declare function configure(options?: { baseDomain?: string | null }): void;
export declare function isValidTenantId(value: unknown): value is string;
export declare function parseCookies(cookie: string | null | undefined): Record<string, string>;
export declare function tenantFromQuery(location: string | LocationLike | URL | null | undefined): string | null;
export declare function tenantFromCookie(cookie: string | null | undefined): string | null;
export declare function tenantFromHost(host: string | null | undefined, baseDomain: string | null | undefined): string | null;
export declare function resolveTenant(inputs?: ResolveInputs): string | null;
export declare function tenantCookie(tenantId: string, options?: { secure?: boolean; maxAge?: number }): string;
export declare function rememberTenant(
  tenantId: string,
  options?: { document?: { cookie: string }; location?: { protocol?: string }; secure?: boolean; maxAge?: number },
): string;
export declare function forgetTenant(options?: { document?: { cookie: string } }): string;
export declare function currentTenant(): string | null;
export declare function withTenantHeader(
  headers: HeadersInit | Record<string, string> | null | undefined,
  tenant: string | null | undefined,
): Headers | Record<string, string>;

export type FetchLike = (input: RequestInfo | URL, init?: RequestInit) => Promise<Response>;
export declare function createTenantFetch(options?: {
  fetch?: FetchLike;
  getTenant?: () => string | null | undefined;
}): FetchLike;
export declare const tenantFetch: FetchLike;

export interface AxiosLike {
  interceptors: { request: { use(onFulfilled: (config: any) => any, onRejected?: (error: any) => any): number } };
}
export declare function installAxiosInterceptor(
  axiosInstance: AxiosLike,
  options?: { getTenant?: () => string | null | undefined; withCredentials?: boolean },
): number;

declare const MtpaasTenant: {
  readonly TENANT_HEADER: typeof TENANT_HEADER;
  readonly TENANT_COOKIE: typeof TENANT_COOKIE;
  readonly TENANT_QUERY_PARAM: typeof TENANT_QUERY_PARAM;
  readonly TENANT_ID_PATTERN: RegExp;
  readonly TENANT_COOKIE_MAX_AGE: number;
  readonly configure: typeof configure;
  readonly isValidTenantId: typeof isValidTenantId;
  readonly parseCookies: typeof parseCookies;
  readonly tenantFromQuery: typeof tenantFromQuery;
  readonly tenantFromCookie: typeof tenantFromCookie;
  readonly tenantFromHost: typeof tenantFromHost;
  readonly resolveTenant: typeof resolveTenant;
  readonly tenantCookie: typeof tenantCookie;
  readonly rememberTenant: typeof rememberTenant;
  readonly forgetTenant: typeof forgetTenant;
  readonly currentTenant: typeof currentTenant;
  readonly withTenantHeader: typeof withTenantHeader;
  readonly createTenantFetch: typeof createTenantFetch;
  readonly tenantFetch: typeof tenantFetch;
  readonly installAxiosInterceptor: typeof installAxiosInterceptor;
};
export default MtpaasTenant;

declare global {
  interface Window {
    MtpaasTenant?: typeof MtpaasTenant;
  }
}
