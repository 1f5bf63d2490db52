// The operator console in headless Chromium (Debian's /usr/bin/chromium, driven by
// playwright-core; no browser is downloaded) against the real mtpaas binary on real
// Postgres and MariaDB. `scripts/browser-tests` builds the binary, creates the
// databases, seeds the market, starts two servers and runs this file:
//
//   CONSOLE_URL          the server whose market MySQL is up
//   CONSOLE_URL_DOWN     a second server on the same database, its market on a closed port
//   SUPERADMIN_TOKEN, TENANT_API_KEY   their secrets
//   MARKET_APPS          "service,demo,service": the seeded applications' ids 1..3 kinds
//   SCREENSHOT_DIR       where the pictures go (the README shows docs/console/)

import { test, before, after, describe } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, readFileSync } from "node:fs";
import http from "node:http";
import path from "node:path";
import { chromium } from "playwright-core";

const BASE = need("CONSOLE_URL");
const BASE_DOWN = need("CONSOLE_URL_DOWN");
const TOKEN = need("SUPERADMIN_TOKEN");
const API_KEY = need("TENANT_API_KEY");
const SHOTS = process.env.SCREENSHOT_DIR || path.resolve("screenshots");
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const PAGE = `${BASE}/api/console/`;

function need(name) {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: run scripts/browser-tests`);
  return v;
}

let browser;
let context; // the operator's signed-in browser (Korean)
let page;
let adminToken; // univ_alpha's admin, for its tenant routes
let evil; // a server of another origin, for the cross-site post

async function json(url, opts = {}) {
  const resp = await fetch(url, opts);
  const text = await resp.text();
  let body = null;
  try {
    body = JSON.parse(text);
  } catch {
    body = text;
  }
  return { status: resp.status, body, headers: resp.headers };
}

async function createTenant(tenant_id, name, application_id, application_kind) {
  const r = await json(`${BASE}/api/tenant/create`, {
    method: "POST",
    headers: { "Content-Type": "application/json", "X-API-Key": API_KEY },
    body: JSON.stringify({
      tenant_id,
      tenant_name: name,
      admin_email: `admin@${tenant_id}.ac.kr`,
      admin_name: "관리자",
      application_id,
      application_kind,
    }),
  });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body;
}

async function tenantStatus(id) {
  const r = await json(`${BASE}/api/tenant/superadmin/tenants/${id}`, {
    headers: { Authorization: `Bearer ${TOKEN}` },
  });
  assert.equal(r.status, 200);
  return r.body.status;
}

function usersAs(tenant) {
  return json(`${BASE}/api/users`, {
    headers: { "X-Tenant-ID": tenant, Authorization: `Bearer ${adminToken}` },
  });
}

async function shot(p, name, opts = {}) {
  mkdirSync(SHOTS, { recursive: true });
  await p.screenshot({ path: path.join(SHOTS, name), fullPage: true, animations: "disabled", ...opts });
}

async function launch() {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-quic",
      "--no-first-run",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}

/** A new browser context with errors of the page made visible to the test. */
async function newContext(opts = {}) {
  const ctx = await browser.newContext({
    viewport: { width: 1280, height: 900 },
    locale: "ko-KR",
    acceptDownloads: true,
    ...opts,
  });
  ctx.on("page", watch);
  return ctx;
}

const pageErrors = [];
function watch(p) {
  p.on("pageerror", (e) => pageErrors.push(`${p.url()}: ${e.message}`));
  p.on("console", (m) => {
    // CSP violations and script errors show up as console errors (on the console's
    // pages; the answers to the cross-site posts are not).
    if (!p.url().includes("/api/console/")) return;
    if (m.type() === "error" && !/status of 40[13]|status of 409|status of 503/.test(m.text())) {
      pageErrors.push(`${p.url()}: console: ${m.text()}`);
    }
  });
}

async function signIn(p, base = BASE) {
  await p.goto(`${base}/api/console/`);
  await p.locator("#token").fill(TOKEN);
  await p.locator("#sign-in-form button[type=submit]").click();
  await p.locator("#tenant-list, #counts").first().waitFor();
}

before(async () => {
  browser = await launch();
  // Tenants of the seeded market applications 1..3, and one without an application.
  const alpha = await createTenant("univ_alpha", "광주대학교", 1, "service");
  await createTenant("univ_beta", "데모대학교", 2, "demo");
  await createTenant("univ_gamma", "테스트대학교", 3, "service");
  await createTenant("univ_delta", "한빛대학교", 4, "service");
  const setup = await json(`${BASE}/api/auth/setup-password`, {
    method: "POST",
    headers: { "Content-Type": "application/json", "X-Tenant-ID": "univ_alpha" },
    body: JSON.stringify({ token: alpha.setup_token, password: "browser test password" }),
  });
  assert.equal(setup.status, 200);
  const login = await json(`${BASE}/api/auth/login`, {
    method: "POST",
    headers: { "Content-Type": "application/json", "X-Tenant-ID": "univ_alpha" },
    body: JSON.stringify({ email: "admin@univ_alpha.ac.kr", password: "browser test password" }),
  });
  assert.equal(login.status, 200);
  adminToken = login.body.access_token;
  // Some API calls and a chat, for the usage figures and the chart.
  for (let i = 0; i < 6; i++) assert.equal((await usersAs("univ_alpha")).status, 200);
  const chat = await json(`${BASE}/api/chat`, {
    method: "POST",
    headers: { "Content-Type": "application/json", "X-Tenant-ID": "univ_alpha", Authorization: `Bearer ${adminToken}` },
    body: JSON.stringify({ message: "안녕하세요" }),
  });
  assert.equal(chat.status, 201);
  // The usage counters are flushed every USAGE_FLUSH_INTERVAL_MS.
  await new Promise((r) => setTimeout(r, 1200));
  context = await newContext();
  page = await context.newPage();
});

after(async () => {
  if (evil) evil.close();
  if (browser) await browser.close();
});

describe("operator console", () => {
  test("the sign-in page shows in Korean and refuses a wrong token", async () => {
    await page.goto(PAGE);
    await page.getByRole("heading", { name: "운영 콘솔 로그인" }).waitFor();
    assert.equal(await page.locator("html").getAttribute("lang"), "ko");
    const focused = await page.evaluate(() => document.activeElement && document.activeElement.id);
    assert.equal(focused, "token", "the token field has the focus");
    await shot(page, "signin.png");

    await page.locator("#token").fill("not-the-token");
    await page.keyboard.press("Enter");
    const err = page.locator("#sign-in-error");
    await err.waitFor({ state: "visible" });
    assert.match(await err.textContent(), /슈퍼관리자 토큰/);
    const cookies = await context.cookies();
    assert.equal(cookies.filter((c) => c.name.includes("mtpaas_console")).length, 0, "no cookie for a wrong token");
    assert.equal(await page.locator("#token").inputValue(), "", "the field is emptied");
  });

  test("signing in gives an HttpOnly, SameSite=Strict cookie and keeps the token nowhere", async () => {
    await page.locator("#token").fill(TOKEN);
    await page.keyboard.press("Enter");
    await page.getByRole("heading", { name: "테넌트", exact: true }).waitFor();
    const cookie = (await context.cookies()).find((c) => c.name === "mtpaas_console");
    assert.ok(cookie, "the session cookie is set");
    assert.equal(cookie.httpOnly, true);
    assert.equal(cookie.sameSite, "Strict");
    assert.notEqual(cookie.value, TOKEN);
    const stored = await page.evaluate(() => JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage }) + document.cookie + location.href);
    assert.ok(!stored.includes(TOKEN), "the token is not in storage, a readable cookie or the URL");
    assert.ok(!stored.includes(cookie.value), "the session is not readable by scripts");
  });

  test("the tenants page shows counts, rows with kind, activity and demo marks", async () => {
    const counts = page.locator("#counts");
    await counts.waitFor();
    assert.match(await counts.textContent(), /4\s*전체/);
    const alpha = page.locator('tr[data-tenant="univ_alpha"]');
    await alpha.waitFor();
    assert.match(await alpha.textContent(), /광주대학교/);
    assert.match(await alpha.textContent(), /활성/);
    assert.match(await alpha.textContent(), /서비스/);
    // Activity comes after the list.
    await page.waitForFunction(() => document.querySelector('tr[data-tenant="univ_alpha"] [data-role=calls]')?.textContent !== "…");
    const calls = await alpha.locator("[data-role=calls]").textContent();
    assert.ok(Number(calls.replace(/,/g, "")) >= 6, `calls in 24 h: ${calls}`);
    assert.notEqual(await alpha.locator("[data-role=last]").textContent(), "—");
    const beta = page.locator('tr[data-tenant="univ_beta"]');
    await beta.locator(".badge.warn").waitFor();
    assert.match(await beta.textContent(), /데모 종료 임박/);
    assert.match(await page.locator("#list-summary").textContent(), /전체 4개 중 1–4/);
    await shot(page, "tenants.png");
  });

  test("the list pages through the tenants", async () => {
    await page.goto(`${PAGE}#/tenants?limit=3`);
    await page.locator("#tenant-list tbody tr").first().waitFor();
    assert.equal(await page.locator("#tenant-list tbody tr").count(), 3);
    assert.match(await page.locator("#list-summary").textContent(), /전체 4개 중 1–3/);
    assert.match(await page.locator(".page-of").textContent(), /1 \/ 2/);
    await page.getByRole("link", { name: "다음" }).click();
    await page.waitForFunction(() => document.querySelector("#list-summary")?.textContent.includes("4–4"));
    assert.equal(await page.locator("#tenant-list tbody tr").count(), 1);
    assert.equal(await page.locator("#tenant-list tbody tr").getAttribute("data-tenant"), "univ_alpha", "oldest last");
    await page.getByRole("link", { name: "이전" }).click();
    await page.waitForFunction(() => document.querySelector("#list-summary")?.textContent.includes("1–3"));
    // The counts filter by status.
    await page.locator("a.count-active").click();
    await page.waitForFunction(() => location.hash.includes("status=active"));
    // The hash changes first; the page renders the filtered list once its fetch answers.
    await page.waitForFunction(() => document.querySelector("#f-status")?.value === "active");
    const shown = await page.locator("#tenant-list tbody tr .status").evaluateAll((els) => els.map((e) => e.dataset.status));
    assert.ok(shown.length > 0, "the active tenants are listed");
    assert.deepEqual([...new Set(shown)], ["active"], "only active tenants are listed");
  });

  test("a tenant is found by search", async () => {
    await page.goto(`${PAGE}#/tenants`);
    await page.locator("#tenant-list").waitFor();
    await page.locator("#f-q").fill("데모");
    await page.locator("#filters button[type=submit]").click();
    await page.waitForFunction(() => document.querySelectorAll("#tenant-list tbody tr").length === 1);
    assert.equal(await page.locator("#tenant-list tbody tr").getAttribute("data-tenant"), "univ_beta");
    assert.match(page.url(), /q=/);
    await page.locator("#f-q").fill("alpha");
    await page.keyboard.press("Enter");
    await page.waitForFunction(() => document.querySelector("#tenant-list tbody tr")?.dataset.tenant === "univ_alpha");
    assert.equal(await page.locator("#tenant-list tbody tr").count(), 1);
    await page.locator("#f-q").fill("nothing-like-this");
    await page.keyboard.press("Enter");
    await page.locator("#list-summary", { hasText: "조건에 맞는 테넌트가 없습니다." }).waitFor();
  });

  test("suspending with a reason grows the history and the tenant's routes answer 403", async () => {
    await page.goto(`${PAGE}#/tenants/univ_alpha`);
    await page.getByRole("heading", { name: /광주대학교/ }).waitFor();
    await page.locator("#drift-verdict").waitFor();
    assert.match(await page.locator("#drift-verdict").textContent(), /템플릿과 일치/);
    await page.locator("#calls-chart rect.bar:not(.zero)").first().waitFor();
    await shot(page, "tenant.png");

    const before = await page.locator("#history tbody tr").count();
    assert.ok(before >= 1, "the creation is in the history");
    await page.locator("#do-suspend").click();
    const dialog = page.locator("#action-dialog");
    await dialog.waitFor();
    assert.match(await dialog.locator("h2").textContent(), /univ_alpha \(광주대학교\) 정지/);
    await page.locator("#action-reason").fill("미납 (브라우저 시험)");
    await shot(page, "action-dialog.png", { fullPage: false });
    await page.locator("#action-confirm").click();
    const result = page.locator("#action-result");
    await result.waitFor();
    assert.match(await result.textContent(), /univ_alpha을\(를\) 정지했습니다/);
    await page.waitForFunction((n) => document.querySelectorAll("#history tbody tr").length === n + 1, before);
    const last = page.locator("#history tbody tr").last();
    assert.equal(await last.getAttribute("data-event"), "suspended");
    assert.match(await last.textContent(), /미납 \(브라우저 시험\)/);
    assert.match(await last.textContent(), /superadmin/);
    assert.match(await page.locator('[data-field="status"]').textContent(), /정지/);

    assert.equal(await tenantStatus("univ_alpha"), "suspended");
    const refused = await usersAs("univ_alpha");
    assert.equal(refused.status, 403);
    assert.equal(refused.body.code, "tenant_suspended");
  });

  test("cancelling the dialog changes nothing, and a refused transition (409) is said in words", async () => {
    await page.goto(`${PAGE}#/tenants/univ_gamma`);
    await page.getByRole("heading", { name: /테스트대학교/ }).waitFor();
    await page.locator("#do-suspend").click();
    await page.locator("#action-dialog").waitFor();
    await page.keyboard.press("Escape");
    await page.locator("#action-dialog").waitFor({ state: "detached" });
    assert.equal(await tenantStatus("univ_gamma"), "active");

    // Delete asks for the id typed out.
    await page.locator("#do-delete").click();
    await page.locator("#action-reason").fill("계약 종료");
    await page.locator("#action-confirm-id").fill("univ_wrong");
    await page.locator("#action-confirm").click();
    await page.getByText("입력한 ID가 univ_gamma와(과) 다릅니다.").waitFor();
    await page.locator("#action-confirm-id").fill("univ_gamma");
    await page.locator("#action-confirm").click();
    await page.locator("#action-result").waitFor();
    assert.match(await page.locator("#action-result").textContent(), /삭제했습니다/);
    assert.equal(await tenantStatus("univ_gamma"), "deleted");

    // Deleted → suspended is not allowed: the 409 is shown, in words.
    await page.locator("#do-suspend").click();
    await page.locator("#action-confirm").click();
    const result = page.locator("#action-result", { hasText: "허용되지 않는 상태 변경입니다" });
    await result.waitFor();
    const text = await result.textContent();
    assert.match(text, /허용되지 않는 상태 변경입니다/);
    assert.match(text, /409/);
    assert.equal(await result.getAttribute("role"), "alert");
    await shot(page, "tenant-409.png", { fullPage: false });

    await page.locator("#do-reinstate").click();
    await page.locator("#action-confirm").click();
    await page.locator("#action-result", { hasText: "univ_gamma을(를) 복구했습니다" }).waitFor();
    assert.equal(await tenantStatus("univ_gamma"), "active");
  });

  test("reinstating brings the tenant's routes back", async () => {
    await page.goto(`${PAGE}#/tenants/univ_alpha`);
    await page.locator("#do-reinstate").click();
    await page.locator("#action-reason").fill("납부 확인");
    await page.locator("#action-confirm").click();
    await page.locator("#action-result", { hasText: "univ_alpha을(를) 복구했습니다" }).waitFor();
    assert.equal(await page.locator("#history tbody tr").last().getAttribute("data-event"), "reinstated");
    assert.equal(await tenantStatus("univ_alpha"), "active");
    assert.equal((await usersAs("univ_alpha")).status, 200);
  });

  test("backing up now gives an archive to download", async () => {
    await page.locator("#backup-now").click();
    await page.locator("#backup-done").waitFor({ timeout: 60_000 });
    const [download] = await Promise.all([page.waitForEvent("download"), page.locator("#backup-download").click()]);
    assert.match(download.suggestedFilename(), /^univ_alpha-.*\.dump$/);
    const file = await download.path();
    assert.equal(readFileSync(file).subarray(0, 5).toString(), "PGDMP", "a pg_dump archive");
    await page.locator("#backup-list table tbody tr").first().waitFor();
  });

  test("the applications page shows the market's applications with their tenants", async () => {
    await page.getByRole("link", { name: "서비스 신청" }).click();
    await page.getByRole("heading", { name: "서비스 신청" }).waitFor();
    const rows = page.locator("#app-list tbody tr");
    await rows.first().waitFor();
    assert.equal(await rows.count(), 3);
    const first = page.locator('tr[data-application="1"]');
    assert.match(await first.textContent(), /univ_alpha/);
    assert.match(await page.locator('tr[data-application="2"]').textContent(), /데모/);
    await shot(page, "applications.png");
    await first.getByRole("link", { name: "univ_alpha" }).click();
    await page.getByRole("heading", { name: /광주대학교/ }).waitFor();
  });

  test("the applications page says clearly when the market's MySQL is down", async () => {
    const ctx = await newContext();
    const p = await ctx.newPage();
    await signIn(p, BASE_DOWN);
    await p.goto(`${BASE_DOWN}/api/console/#/applications`);
    const down = p.locator("#market-down");
    await down.waitFor({ timeout: 15_000 });
    assert.match(await down.textContent(), /서비스 마켓 DB에 연결할 수 없습니다/);
    assert.match(await down.textContent(), /market/i, "the server's reason is shown");
    await shot(p, "applications-market-down.png");
    // The tenants page still works there, with the demo mark's reason.
    await p.getByRole("link", { name: "테넌트", exact: true }).click();
    await p.locator("#activity-note").waitFor({ state: "visible", timeout: 15_000 });
    assert.match(await p.locator("#activity-note").textContent(), /데모 종료일을 확인하지 못했습니다/);
    await ctx.close();
  });

  test("English when the browser prefers it, Korean by the switch; keyboard only", async () => {
    const ctx = await newContext({ locale: "en-US" });
    const p = await ctx.newPage();
    await p.goto(PAGE);
    await p.getByRole("heading", { name: "Sign in to the operator console" }).waitFor();
    assert.equal(await p.locator("html").getAttribute("lang"), "en");
    // Keyboard only: the token field has the focus; Enter signs in.
    await p.keyboard.type(TOKEN);
    await p.keyboard.press("Enter");
    await p.getByRole("heading", { name: "Tenants", exact: true }).waitFor();
    assert.equal(await p.evaluate(() => document.activeElement.tagName), "H1", "the page's heading gets the focus");
    // Tab reaches the first tenant's link; Enter opens it.
    let reached = false;
    for (let i = 0; i < 40 && !reached; i++) {
      await p.keyboard.press("Tab");
      reached = await p.evaluate(() => document.activeElement?.getAttribute("href") === "#/tenants/univ_delta");
    }
    assert.ok(reached, "the tenant link is reachable with Tab");
    const outline = await p.evaluate(() => getComputedStyle(document.activeElement).outlineStyle);
    assert.notEqual(outline, "none", "focus is visible");
    await p.keyboard.press("Enter");
    await p.getByRole("heading", { name: /한빛대학교/ }).waitFor();
    await p.getByRole("heading", { name: "Registry" }).waitFor();
    await shot(p, "tenant-en.png");
    await p.getByRole("button", { name: "한국어로 보기" }).click();
    await p.getByRole("heading", { name: "등록 정보" }).waitFor();
    assert.equal(await p.locator("html").getAttribute("lang"), "ko");
    await ctx.close();
  });

  test("a phone's width is usable", async () => {
    const ctx = await newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, deviceScaleFactor: 2 });
    const p = await ctx.newPage();
    await signIn(p);
    await p.locator('tr[data-tenant="univ_alpha"]').waitFor();
    const overflow = await p.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 1, `the page is ${overflow}px wider than the phone`);
    await shot(p, "tenants-phone.png");
    await p.goto(`${PAGE}#/tenants/univ_alpha`);
    await p.getByRole("heading", { name: /광주대학교/ }).waitFor();
    const overflow2 = await p.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow2 <= 1, `the tenant page is ${overflow2}px wider than the phone`);
    await ctx.close();
  });

  test("a state change without the CSRF token is refused", async () => {
    await page.goto(`${PAGE}#/tenants`);
    await page.locator("#counts").waitFor();
    const r = await page.evaluate(async () => {
      const resp = await fetch("/api/tenant/superadmin/tenants/univ_alpha/suspend", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ reason: "no csrf" }),
      });
      return { status: resp.status, body: await resp.json() };
    });
    assert.equal(r.status, 403);
    assert.equal(r.body.code, "csrf_token_missing");
    assert.equal(await tenantStatus("univ_alpha"), "active");
  });

  test("a cross-site form post is refused", async () => {
    const target = `${BASE}/api/tenant/superadmin/tenants/univ_alpha/suspend`;
    evil = http.createServer((req, res) => {
      res.writeHead(200, { "Content-Type": "text/html; charset=utf-8" });
      res.end(`<!doctype html><form id=f method=post action="${target}" enctype="text/plain">
        <input name='{"reason":"forged","x":"' value='"}'></form>
        <script>document.getElementById("f").submit()</script>`);
    });
    await new Promise((r) => evil.listen(0, "127.0.0.1", r));
    const port = evil.address().port;
    // Another site (localhost is not 127.0.0.1's site): the Strict cookie is not sent.
    // Same site, another origin (another port): the cookie is sent, the origin is not ours.
    for (const origin of [`http://localhost:${port}`, `http://127.0.0.1:${port}`]) {
      const p = await context.newPage();
      const answer = p.waitForResponse((resp) => resp.url() === target);
      await p.goto(`${origin}/`);
      const resp = await answer;
      assert.ok([401, 403].includes(resp.status()), `${origin}: ${resp.status()}`);
      const body = await resp.json();
      assert.ok(["invalid_superadmin_credentials", "cross_site_request"].includes(body.code), `${origin}: ${body.code}`);
      await p.close();
    }
    assert.equal(await tenantStatus("univ_alpha"), "active");
  });

  test("a session ended elsewhere sends the page back to the sign-in form", async () => {
    const ctx = await newContext();
    const p = await ctx.newPage();
    await signIn(p);
    const cookie = (await ctx.cookies()).find((c) => c.name === "mtpaas_console");
    const headers = { Cookie: `mtpaas_console=${cookie.value}` };
    // Another tab (here: a plain HTTP client with the same cookie) signs out.
    const me = await json(`${BASE}/api/console/session`, { headers });
    assert.equal(me.status, 200);
    const out = await json(`${BASE}/api/console/session`, {
      method: "DELETE",
      headers: { ...headers, "X-CSRF-Token": me.body.csrf_token },
    });
    assert.equal(out.status, 200);
    await p.getByRole("link", { name: "univ_alpha" }).click();
    await p.locator("#sign-in-notice", { hasText: "세션이 만료되었거나 종료되었습니다" }).waitFor();
    await p.getByRole("heading", { name: "운영 콘솔 로그인" }).waitFor();
    await ctx.close();
  });

  test("signing out closes the pages, and the old cookie no longer works", async () => {
    await page.goto(`${PAGE}#/tenants`);
    await page.locator("#counts").waitFor();
    const old = (await context.cookies()).find((c) => c.name === "mtpaas_console");
    assert.ok(old);
    await page.locator("#sign-out").click();
    await page.locator("#sign-in-notice").waitFor();
    assert.match(await page.locator("#sign-in-notice").textContent(), /로그아웃했습니다/);
    assert.equal((await context.cookies()).filter((c) => c.name === "mtpaas_console").length, 0);
    await shot(page, "signed-out.png");

    await page.goto(`${PAGE}#/tenants/univ_alpha`);
    await page.getByRole("heading", { name: "운영 콘솔 로그인" }).waitFor();
    assert.equal(await page.locator("#registry").count(), 0, "no tenant data without a session");
    const r = await page.evaluate(async () => (await fetch("/api/tenant/superadmin/tenants")).status);
    assert.equal(r, 401);
    // Even a copy of the cookie is dead: the session ended on the server.
    const replay = await json(`${BASE}/api/tenant/superadmin/tenants`, { headers: { Cookie: `mtpaas_console=${old.value}` } });
    assert.equal(replay.status, 401);
    assert.equal(replay.body.code, "console_session_expired");
  });

  test("no script error or CSP violation happened on any page", () => {
    assert.deepEqual(pageErrors, []);
  });
});
