// The console's shell: language, session, navigation and the router. Views are
// modules of their own (tenants.js, tenant.js, applications.js); each renders into
// <main> and gets a context with the helpers below.

import { api, setCsrf, whenSignedOut, ApiError } from "./api.js";
import { h, put } from "./dom.js";
import { t, lang, setLang, otherLang, describeError } from "./i18n.js";
import { tenantsView } from "./tenants.js";
import { tenantView } from "./tenant.js";
import { applicationsView } from "./applications.js";

const main = document.getElementById("main");
const nav = document.getElementById("nav");
const tools = document.getElementById("tools");
const announcer = document.getElementById("announcer");

let session = null; // {subject, expires_at, csrf_token} while signed in
let expiryTimer = null;
let signInNotice = null; // why the sign-in form is shown (expired, signed out)
let renderSeq = 0;

/** Says something to screen readers (the visible message is the view's own). */
function announce(text) {
  announcer.textContent = "";
  setTimeout(() => {
    announcer.textContent = text;
  }, 50);
}

function route() {
  const raw = location.hash.replace(/^#/, "") || "/tenants";
  const [path, qs] = raw.split("?");
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  return { parts, params: new URLSearchParams(qs || "") };
}

export function go(hash) {
  if (location.hash === hash) render();
  else location.hash = hash;
}

function applyLang() {
  document.documentElement.lang = lang();
  document.title = t("app.title");
  document.getElementById("brand-sub").textContent = t("app.subtitle");
  document.getElementById("skip").textContent = t("app.skip");
  nav.setAttribute("aria-label", t("nav.label"));
}

function renderChrome() {
  applyLang();
  const current = route().parts[0] || "tenants";
  const link = (hash, key, name) =>
    h("a", { href: hash, "aria-current": current === name ? "page" : null }, t(key));
  put(
    nav,
    session
      ? h("ul", null, h("li", null, link("#/tenants", "nav.tenants", "tenants")), h("li", null, link("#/applications", "nav.applications", "applications")))
      : null,
  );
  const langButton = h(
    "button",
    {
      type: "button",
      class: "lang",
      lang: otherLang(),
      "aria-label": t("lang.switch_label"),
      onclick: () => {
        setLang(otherLang());
        render();
        announce(t("lang.switched"));
      },
    },
    t("lang.switch"),
  );
  put(
    tools,
    langButton,
    session
      ? [
          h("span", { class: "who" }, t("session.signed_in_as", { who: session.subject })),
          h("button", { type: "button", class: "signout", id: "sign-out", onclick: signOut }, t("session.sign_out")),
        ]
      : null,
  );
}

function setSession(s) {
  session = s;
  setCsrf(s ? s.csrf_token : null);
  clearTimeout(expiryTimer);
  if (s) {
    const ms = new Date(s.expires_at).getTime() - Date.now();
    // Timers cap at ~24.8 days; sessions are far shorter.
    expiryTimer = setTimeout(() => signedOut("expired"), Math.max(0, Math.min(ms, 2 ** 31 - 1)));
  }
}

function signedOut(why) {
  if (!session && why !== "expired") return;
  setSession(null);
  signInNotice = why;
  render();
}

whenSignedOut(() => signedOut("expired"));

async function signOut() {
  try {
    await api("/api/console/session", { method: "DELETE", quiet401: true });
  } catch (e) {
    if (!(e instanceof ApiError) || e.status !== 401) {
      announce(describeError(e));
      return;
    }
  }
  setSession(null);
  signInNotice = "signed_out";
  history.replaceState(null, "", "#/tenants");
  render();
}

function signInView() {
  const err = h("p", { class: "notice error", id: "sign-in-error", role: "alert", hidden: true });
  const input = h("input", {
    id: "token",
    name: "token",
    type: "password",
    autocomplete: "off",
    autocapitalize: "off",
    spellcheck: "false",
    required: true,
    "aria-describedby": "token-help",
  });
  const button = h("button", { type: "submit", class: "primary" }, t("signin.submit"));
  const form = h(
    "form",
    { class: "signin", id: "sign-in-form", novalidate: true },
    h("label", { for: "token" }, t("signin.token")),
    input,
    h("p", { class: "help", id: "token-help" }, t("signin.help")),
    button,
  );
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    err.hidden = true;
    const token = input.value.trim();
    if (!token) {
      put(err, t("signin.empty"));
      err.hidden = false;
      input.focus();
      return;
    }
    button.disabled = true;
    try {
      const s = await api("/api/console/session", { method: "POST", body: { token }, quiet401: true });
      input.value = "";
      signInNotice = null;
      setSession(s);
      announce(t("signin.done"));
      render();
    } catch (e) {
      input.value = "";
      put(err, e instanceof ApiError && e.status === 401 ? t("signin.refused") : describeError(e));
      err.hidden = false;
      input.focus();
    } finally {
      button.disabled = false;
    }
  });
  const notice = signInNotice
    ? h("p", { class: "notice", role: "status", id: "sign-in-notice" }, t(`signin.notice_${signInNotice}`))
    : null;
  return [
    h("h1", { tabindex: "-1" }, t("signin.title")),
    notice,
    h("p", null, t("signin.intro")),
    form,
    err,
  ];
}

async function render() {
  const seq = ++renderSeq;
  renderChrome();
  if (!session) {
    put(main, h("section", { class: "signin-page" }, signInView()));
    main.querySelector("#token").focus();
    return;
  }
  const { parts, params } = route();
  const ctx = {
    go,
    announce,
    // A view renders only while it is still the current one.
    current: () => seq === renderSeq,
    session,
  };
  let view;
  if (parts[0] === "tenants" && parts[1]) view = tenantView(ctx, parts[1]);
  else if (parts[0] === "applications") view = applicationsView(ctx);
  else view = tenantsView(ctx, params);
  put(main, h("p", { class: "loading" }, t("common.loading")));
  try {
    const nodes = await view;
    if (!ctx.current()) return;
    put(main, nodes);
  } catch (e) {
    if (!ctx.current()) return;
    if (e instanceof ApiError && e.status === 401) return; // signedOut() renders
    put(main, h("h1", { tabindex: "-1" }, t("common.error_title")), h("p", { class: "notice error", role: "alert" }, describeError(e)));
  }
  const h1 = main.querySelector("h1");
  if (h1 && document.activeElement !== h1 && !main.contains(document.activeElement)) {
    h1.focus({ preventScroll: false });
  }
}

document.getElementById("skip").addEventListener("click", () => {
  const target = main.querySelector("h1") || main;
  target.focus();
});

window.addEventListener("hashchange", () => render());

async function boot() {
  applyLang();
  try {
    setSession(await api("/api/console/session", { quiet401: true }));
  } catch (e) {
    setSession(null);
    if (e instanceof ApiError && e.code === "console_session_expired") signInNotice = "expired";
  }
  render();
}

boot();
