// The service market's applications (seed 5.2) beside the tenant each produced; a
// clear message when the market's MySQL cannot be reached (the API answers 503).

import { api, enc, ApiError } from "./api.js";
import { h } from "./dom.js";
import { statusBadge } from "./tenants.js";
import { t, kindText, appStatusText, fmtMarketTime, describeError } from "./i18n.js";

function row(a) {
  const cell = (key, ...c) => h("td", { "data-label": t(key) }, ...c);
  return h(
    "tr",
    { dataset: { application: String(a.id) } },
    h("th", { scope: "row", "data-label": t("apps.id") }, String(a.id)),
    cell("apps.kind", kindText(a.kind)),
    cell("apps.status", appStatusText(a.status)),
    cell("apps.university", a.university_name || "—"),
    cell("apps.email", a.email || "—"),
    cell("apps.created", fmtMarketTime(a.created_at)),
    cell("apps.demo_expires", a.kind === "demo" ? fmtMarketTime(a.demo_expires_at) : "—"),
    cell(
      "apps.tenant",
      a.tenant
        ? [h("a", { href: `#/tenants/${enc(a.tenant.tenant_id)}` }, a.tenant.tenant_id), " ", statusBadge(a.tenant.status)]
        : h("span", { class: "empty" }, t("apps.no_tenant")),
    ),
  );
}

export async function applicationsView(ctx) {
  const title = h("h1", { tabindex: "-1" }, t("apps.title"));
  let data;
  try {
    data = await api("/api/tenant/superadmin/applications?limit=1000");
  } catch (e) {
    if (e instanceof ApiError && e.status === 503) {
      const retry = h("button", { type: "button", id: "apps-retry", onclick: () => ctx.go(location.hash) }, t("common.retry"));
      return [
        title,
        h(
          "div",
          { class: "notice error", role: "alert", id: "market-down" },
          h("p", null, h("strong", null, t("apps.market_down"))),
          h("p", null, t("apps.market_down_detail", { detail: e.detail || describeError(e) })),
          h("p", null, t("apps.market_down_help")),
        ),
        h("div", { class: "buttons" }, retry),
      ];
    }
    throw e;
  }
  const apps = data.applications;
  const withTenant = apps.filter((a) => a.tenant).length;
  return [
    title,
    h("p", { class: "summary", id: "apps-summary" }, t("apps.summary", { n: apps.length, with: withTenant })),
    apps.length
      ? h(
          "div",
          { class: "table-wrap", role: "region", "aria-labelledby": "apps-summary", tabindex: "0" },
          h(
            "table",
            { class: "list", id: "app-list" },
            h("caption", { class: "visually-hidden" }, t("apps.caption")),
            h(
              "thead",
              null,
              h(
                "tr",
                null,
                ["apps.id", "apps.kind", "apps.status", "apps.university", "apps.email", "apps.created", "apps.demo_expires", "apps.tenant"].map((k) =>
                  h("th", { scope: "col" }, t(k)),
                ),
              ),
            ),
            h("tbody", null, apps.map(row)),
          ),
        )
      : h("p", null, t("apps.none")),
    h("p", { class: "help" }, t("apps.help")),
  ];
}
