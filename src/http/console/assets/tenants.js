// The tenants page: counts by status, the filter (status, search, page size), the list
// with its total and paging, and per-row activity filled in after the list.

import { api, query, enc, ApiError } from "./api.js";
import { h, put } from "./dom.js";
import { t, fmtDateTime, fmtNumber, statusText, kindText, describeError, demoText } from "./i18n.js";

const STATUSES = ["active", "suspended", "deleted", "purged"];
const PAGE_SIZES = [25, 50, 100];

function listHash({ status, q, limit, offset }) {
  return `#/tenants${query({ status, q, limit: limit === 25 ? "" : limit, offset: offset || "" })}`;
}

export function statusBadge(status) {
  return h("span", { class: `status status-${status}`, dataset: { status } }, statusText(status));
}

function countsBar(overview, active) {
  const card = (status, n) =>
    h(
      "li",
      null,
      h(
        "a",
        {
          class: `count count-${status || "all"}`,
          href: listHash({ status, limit: 25 }),
          "aria-current": (active || "") === (status || "") ? "true" : null,
        },
        h("span", { class: "count-n" }, fmtNumber(n)),
        h("span", { class: "count-label" }, status ? statusText(status) : t("tenants.all")),
      ),
    );
  return h(
    "nav",
    { "aria-label": t("tenants.counts_label") },
    h("ul", { class: "counts", id: "counts" }, card("", overview.total), STATUSES.map((s) => card(s, overview.counts[s]))),
  );
}

function filterForm(f) {
  const status = h(
    "select",
    { id: "f-status", name: "status" },
    h("option", { value: "" }, t("tenants.all")),
    STATUSES.map((s) => h("option", { value: s, selected: f.status === s }, statusText(s))),
  );
  const q = h("input", { id: "f-q", name: "q", type: "search", value: f.q || "", maxlength: "200", autocomplete: "off" });
  const limit = h(
    "select",
    { id: "f-limit", name: "limit" },
    [...new Set([...PAGE_SIZES, f.limit])].sort((a, b) => a - b).map((n) => h("option", { value: String(n), selected: f.limit === n }, String(n))),
  );
  const form = h(
    "form",
    { class: "filters", role: "search", id: "filters" },
    h("div", { class: "field" }, h("label", { for: "f-q" }, t("tenants.search")), q),
    h("div", { class: "field" }, h("label", { for: "f-status" }, t("tenants.status")), status),
    h("div", { class: "field" }, h("label", { for: "f-limit" }, t("tenants.page_size")), limit),
    h("div", { class: "field field-button" }, h("button", { type: "submit", class: "primary" }, t("tenants.apply"))),
  );
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    location.hash = listHash({ status: status.value, q: q.value.trim(), limit: Number(limit.value), offset: 0 });
  });
  return form;
}

function pager(f, total, shown) {
  if (total === 0) return null;
  const page = Math.floor(f.offset / f.limit) + 1;
  const pages = Math.max(1, Math.ceil(total / f.limit));
  const prev = f.offset > 0 ? listHash({ ...f, offset: Math.max(0, f.offset - f.limit) }) : null;
  const next = f.offset + shown < total ? listHash({ ...f, offset: f.offset + f.limit }) : null;
  const link = (href, key, rel) =>
    href ? h("a", { href, rel, class: "button" }, t(key)) : h("span", { class: "button disabled", "aria-disabled": "true" }, t(key));
  return h(
    "nav",
    { class: "pager", "aria-label": t("tenants.paging") },
    link(prev, "tenants.prev", "prev"),
    h("span", { class: "page-of" }, t("tenants.page_of", { page, pages })),
    link(next, "tenants.next", "next"),
  );
}

function row(tn) {
  const cell = (key, ...content) => h("td", { "data-label": t(key) }, ...content);
  return h(
    "tr",
    { dataset: { tenant: tn.tenant_id } },
    h(
      "th",
      { scope: "row", "data-label": t("col.tenant") },
      h("a", { href: `#/tenants/${enc(tn.tenant_id)}` }, tn.tenant_id),
      h("span", { class: "sub" }, tn.tenant_name),
    ),
    cell("col.status", statusBadge(tn.status)),
    cell("col.kind", kindText(tn.application_kind), h("span", { class: "demo-mark", dataset: { role: "demo" } })),
    cell("col.application", tn.application_id ?? "—"),
    cell("col.created", fmtDateTime(tn.created_at)),
    cell("col.last_activity", h("span", { dataset: { role: "last" } }, "…")),
    cell("col.calls_24h", h("span", { class: "num", dataset: { role: "calls" } }, "…")),
  );
}

async function fillActivity(ctx, table, tenants, note) {
  if (tenants.length === 0) return;
  let data;
  try {
    data = await api(`/api/console/activity${query({ ids: tenants.map((x) => x.tenant_id).join(",") })}`);
  } catch (e) {
    if (!ctx.current() || (e instanceof ApiError && e.status === 401)) return;
    for (const el of table.querySelectorAll("[data-role=last], [data-role=calls]")) el.textContent = "?";
    put(note, t("tenants.activity_failed", { reason: describeError(e) }));
    note.hidden = false;
    return;
  }
  if (!ctx.current()) return;
  const byId = new Map(data.tenants.map((a) => [a.tenant_id, a]));
  for (const tr of table.querySelectorAll("tbody tr")) {
    const a = byId.get(tr.dataset.tenant);
    tr.querySelector("[data-role=last]").textContent = a && a.last_activity ? fmtDateTime(a.last_activity) : "—";
    tr.querySelector("[data-role=calls]").textContent = a ? fmtNumber(a.calls_24h) : "0";
    const mark = tr.querySelector("[data-role=demo]");
    if (a && a.demo_expires_at) {
      mark.replaceChildren(
        h(
          "span",
          { class: a.demo_expiring_soon ? "badge warn" : "badge", title: a.demo_expires_at.replace("T", " ") },
          demoText(a.demo_expires_in_secs, a.demo_expiring_soon),
        ),
      );
    }
  }
  if (data.market_error) {
    put(note, t("tenants.demo_unknown", { reason: data.market_error }));
    note.hidden = false;
  }
}

export async function tenantsView(ctx, params) {
  // Any page size the API takes (1–500) from the address; the form offers the usual ones.
  const asked = Number.parseInt(params.get("limit") || "", 10);
  const limit = asked >= 1 && asked <= 500 ? asked : 25;
  const offset = Math.max(0, Number.parseInt(params.get("offset") || "0", 10) || 0);
  const status = STATUSES.includes(params.get("status")) ? params.get("status") : "";
  const q = (params.get("q") || "").slice(0, 200);
  const f = { status, q, limit, offset };

  const [overview, list] = await Promise.all([
    api("/api/console/overview"),
    api(`/api/tenant/superadmin/tenants${query({ status, q, limit, offset })}`),
  ]);

  const first = list.total === 0 ? 0 : offset + 1;
  const last = offset + list.tenants.length;
  const summary = h(
    "p",
    { class: "summary", id: "list-summary", role: "status" },
    list.total === 0
      ? t(q || status ? "tenants.none_match" : "tenants.none")
      : t("tenants.showing", { first: fmtNumber(first), last: fmtNumber(last), total: fmtNumber(list.total) }),
  );
  const note = h("p", { class: "notice", id: "activity-note", hidden: true });
  const table = h(
    "table",
    { class: "list", id: "tenant-list" },
    h("caption", { class: "visually-hidden" }, t("tenants.caption")),
    h(
      "thead",
      null,
      h(
        "tr",
        null,
        ["col.tenant", "col.status", "col.kind", "col.application", "col.created", "col.last_activity", "col.calls_24h"].map((k) =>
          h("th", { scope: "col" }, t(k)),
        ),
      ),
    ),
    h("tbody", null, list.tenants.map(row)),
  );
  fillActivity(ctx, table, list.tenants, note);
  return [
    h("h1", { tabindex: "-1" }, t("tenants.title")),
    countsBar(overview, status),
    filterForm(f),
    summary,
    list.tenants.length ? h("div", { class: "table-wrap", role: "region", "aria-labelledby": "list-summary", tabindex: "0" }, table) : null,
    note,
    pager(f, list.total, list.tenants.length),
    h("p", { class: "help" }, t("tenants.demo_soon_help", { days: overview.demo_soon_days })),
  ];
}
