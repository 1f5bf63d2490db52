// One tenant: its registry row, actions (suspend, reinstate, delete, back up now),
// usage with the calls-per-day chart, schema version and drift, backups, history.

import { api, enc, ApiError } from "./api.js";
import { h, put } from "./dom.js";
import { callsChart } from "./chart.js";
import { statusBadge } from "./tenants.js";
import {
  t,
  fmtDateTime,
  fmtNumber,
  fmtBytes,
  statusText,
  kindText,
  eventText,
  describeError,
  describeActionError,
} from "./i18n.js";

// The message of the last action, shown once at the top after the view reloads.
let flash = null;

const FIELDS = [
  "tenant_id",
  "tenant_name",
  "status",
  "admin_email",
  "admin_name",
  "university_name",
  "contact",
  "description",
  "application_id",
  "application_kind",
  "node",
  "created_at",
  "updated_at",
  "suspended_at",
  "suspended_reason",
  "deleted_at",
  "deleted_reason",
];
const TIMES = new Set(["created_at", "updated_at", "suspended_at", "deleted_at"]);

function value(key, v) {
  if (v === null || v === undefined || v === "") return h("span", { class: "empty" }, "—");
  if (key === "status") return statusBadge(v);
  if (key === "application_kind") return kindText(v);
  if (TIMES.has(key)) return h("time", { datetime: v }, fmtDateTime(v));
  if (typeof v === "object") return JSON.stringify(v);
  return String(v);
}

function registry(tenant) {
  // Known fields in order, then whatever else the API gives (e.g. `node` on Citus).
  const keys = FIELDS.filter((k) => k in tenant && (k !== "node" || tenant.node != null));
  for (const k of Object.keys(tenant)) if (!FIELDS.includes(k)) keys.push(k);
  return h(
    "section",
    { "aria-labelledby": "sec-registry", class: "card" },
    h("h2", { id: "sec-registry" }, t("tenant.registry")),
    h(
      "dl",
      { class: "fields", id: "registry" },
      keys.map((k) => h("div", { dataset: { field: k } }, h("dt", null, t(`field.${k}`, {}, k)), h("dd", null, value(k, tenant[k])))),
    ),
  );
}

/** The confirmation dialog of a status change; resolves {reason} or null. */
function confirmAction(tenant, action) {
  return new Promise((resolve) => {
    const name = `${tenant.tenant_id} (${tenant.tenant_name})`;
    const reason = h("textarea", { id: "action-reason", name: "reason", maxlength: "255", rows: "3" });
    const typed = action === "delete" ? h("input", { id: "action-confirm-id", name: "confirm", autocomplete: "off", spellcheck: "false" }) : null;
    const err = h("p", { class: "notice error", role: "alert", hidden: true });
    const confirmBtn = h("button", { type: "submit", class: action === "reinstate" ? "primary" : "danger", id: "action-confirm" }, t(`action.${action}.confirm`, { id: tenant.tenant_id }));
    const cancel = h("button", { type: "button", id: "action-cancel" }, t("common.cancel"));
    const form = h(
      "form",
      { method: "dialog" },
      h("h2", { id: "dialog-title" }, t(`action.${action}.title`, { name })),
      h("p", { id: "dialog-desc" }, t(`action.${action}.explain`, { id: tenant.tenant_id })),
      h("label", { for: "action-reason" }, t("action.reason")),
      reason,
      h("p", { class: "help" }, t("action.reason_help")),
      typed ? [h("label", { for: "action-confirm-id" }, t("action.delete.type_id", { id: tenant.tenant_id })), typed] : null,
      err,
      h("div", { class: "buttons" }, cancel, confirmBtn),
    );
    const dialog = h("dialog", { class: "confirm", "aria-labelledby": "dialog-title", "aria-describedby": "dialog-desc", id: "action-dialog" }, form);
    let result = null;
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      if (typed && typed.value.trim() !== tenant.tenant_id) {
        put(err, t("action.delete.mismatch", { id: tenant.tenant_id }));
        err.hidden = false;
        typed.focus();
        return;
      }
      result = { reason: reason.value.trim() };
      dialog.close();
    });
    cancel.addEventListener("click", () => dialog.close());
    dialog.addEventListener("close", () => {
      dialog.remove();
      resolve(result);
    });
    document.body.append(dialog);
    dialog.showModal();
    reason.focus();
  });
}

async function runAction(ctx, tenant, action) {
  const answer = await confirmAction(tenant, action);
  if (!answer) return;
  try {
    const body = answer.reason ? { reason: answer.reason } : {};
    const row = await api(`/api/tenant/superadmin/tenants/${enc(tenant.tenant_id)}/${action}`, { method: "POST", body });
    const unchanged = row.status === tenant.status;
    flash = {
      ok: true,
      text: unchanged
        ? t("action.unchanged", { id: row.tenant_id, status: statusText(row.status) })
        : t(`action.${action}.done`, { id: row.tenant_id, status: statusText(row.status) }),
    };
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) return;
    flash = { ok: false, text: describeActionError(e, action, tenant) };
  }
  ctx.go(location.hash);
}

function actions(ctx, tenant) {
  const btn = (action, cls) =>
    h("button", { type: "button", class: cls, id: `do-${action}`, onclick: () => runAction(ctx, tenant, action) }, t(`action.${action}.button`));
  return h(
    "section",
    { "aria-labelledby": "sec-actions", class: "card" },
    h("h2", { id: "sec-actions" }, t("tenant.actions")),
    h("p", null, t("tenant.now_status", { status: statusText(tenant.status) })),
    h("div", { class: "buttons" }, btn("suspend", "warn"), btn("reinstate", "primary"), btn("delete", "danger")),
    h("p", { class: "help" }, t("tenant.actions_help")),
  );
}

function usageSection(usage) {
  const u = usage.usage;
  const item = (key, v) => h("div", null, h("dt", null, t(key)), h("dd", null, v));
  return h(
    "section",
    { "aria-labelledby": "sec-usage", class: "card" },
    h("h2", { id: "sec-usage" }, t("tenant.usage")),
    h(
      "dl",
      { class: "fields stats", id: "usage" },
      item("usage.users", u.user_count == null ? "—" : fmtNumber(u.user_count)),
      item("usage.chats", u.chat_count == null ? "—" : fmtNumber(u.chat_count)),
      item("usage.last_activity", u.last_activity ? fmtDateTime(u.last_activity) : "—"),
      item("usage.calls_total", fmtNumber(u.api_calls.total)),
      item("usage.calls_24h", fmtNumber(u.api_calls.last_24h)),
    ),
    callsChart(u.api_calls.per_day, 30),
  );
}

function schemaSection(ctx, id) {
  const body = h("div", { id: "schema-status", "aria-live": "polite" }, h("p", { class: "loading" }, t("schema.checking")));
  const recheck = h("button", { type: "button", id: "schema-recheck" }, t("schema.recheck"));
  const load = async () => {
    recheck.disabled = true;
    put(body, h("p", { class: "loading" }, t("schema.checking")));
    try {
      const r = await api(`/api/console/tenants/${enc(id)}/schema`);
      if (!ctx.current()) return;
      const versions = h(
        "dl",
        { class: "fields" },
        h("div", null, h("dt", null, t("schema.version")), h("dd", null, r.schema_version ?? "—")),
        h("div", null, h("dt", null, t("schema.template_version", { template: r.template })), h("dd", null, r.template_version ?? "—")),
      );
      let verdict;
      if (!r.checked) verdict = h("p", { class: "notice" }, t("schema.not_checked"));
      else if (r.in_sync) verdict = h("p", { class: "notice ok", id: "drift-verdict" }, "✓ ", t("schema.in_sync"));
      else
        verdict = [
          h("p", { class: "notice warn", id: "drift-verdict" }, "⚠ ", t("schema.drift", { n: r.differences.length })),
          h("ul", { class: "drift" }, r.differences.map((d) => h("li", null, h("code", null, d.text)))),
          h("p", { class: "help" }, t("schema.drift_help")),
        ];
      put(body, versions, verdict);
    } catch (e) {
      if (!ctx.current() || (e instanceof ApiError && e.status === 401)) return;
      put(body, h("p", { class: "notice error" }, t("schema.failed", { reason: describeError(e) })));
    } finally {
      recheck.disabled = false;
    }
  };
  recheck.addEventListener("click", load);
  load();
  return h(
    "section",
    { "aria-labelledby": "sec-schema", class: "card" },
    h("h2", { id: "sec-schema" }, t("tenant.schema")),
    body,
    h("div", { class: "buttons" }, recheck),
  );
}

function backupRow(b) {
  return h(
    "tr",
    null,
    h("td", { "data-label": t("backup.when") }, fmtDateTime(b.finished_at)),
    h("td", { "data-label": t("backup.size"), class: "num" }, fmtBytes(b.bytes)),
    h("td", { "data-label": t("backup.version") }, String(b.schema_version)),
    h("td", { "data-label": "SHA-256" }, h("code", { title: b.sha256 }, b.sha256.slice(0, 12), "…")),
    h(
      "td",
      { "data-label": t("backup.download") },
      h("a", { href: b.download_url, download: "", class: "download" }, t("backup.archive")),
      " · ",
      h("a", { href: b.manifest_url, download: "" }, t("backup.manifest")),
    ),
  );
}

function backupSection(ctx, tenant) {
  const status = h("div", { id: "backup-status", "aria-live": "polite" });
  const list = h("div", { id: "backup-list" }, h("p", { class: "loading" }, t("common.loading")));
  const purged = tenant.status === "purged";
  const now = h("button", { type: "button", id: "backup-now", class: "primary", disabled: purged }, t("backup.now"));
  const loadList = async () => {
    try {
      const r = await api(`/api/console/tenants/${enc(tenant.tenant_id)}/backups`);
      if (!ctx.current()) return;
      put(
        list,
        r.backups.length
          ? h(
              "div",
              { class: "table-wrap", role: "region", "aria-label": t("backup.list"), tabindex: "0" },
              h(
                "table",
                { class: "list compact" },
                h("caption", { class: "visually-hidden" }, t("backup.list")),
                h("thead", null, h("tr", null, ["backup.when", "backup.size", "backup.version", "SHA-256", "backup.download"].map((k) => h("th", { scope: "col" }, k.includes(".") ? t(k) : k)))),
                h("tbody", null, r.backups.map(backupRow)),
              ),
            )
          : h("p", null, t("backup.none")),
      );
    } catch (e) {
      if (!ctx.current() || (e instanceof ApiError && e.status === 401)) return;
      put(list, h("p", { class: "notice error" }, describeError(e)));
    }
  };
  now.addEventListener("click", async () => {
    now.disabled = true;
    put(status, h("p", { class: "loading" }, t("backup.running", { id: tenant.tenant_id })));
    try {
      const b = await api(`/api/console/tenants/${enc(tenant.tenant_id)}/backups`, { method: "POST" });
      if (!ctx.current()) return;
      put(
        status,
        h(
          "p",
          { class: "notice ok", id: "backup-done" },
          "✓ ",
          t("backup.done", { id: b.tenant_id, size: fmtBytes(b.bytes), run: b.run }),
          " ",
          h("a", { href: b.download_url, download: "", id: "backup-download" }, t("backup.download_archive")),
        ),
      );
      ctx.announce(t("backup.done", { id: b.tenant_id, size: fmtBytes(b.bytes), run: b.run }));
      loadList();
    } catch (e) {
      if (!ctx.current() || (e instanceof ApiError && e.status === 401)) return;
      put(status, h("p", { class: "notice error", role: "alert" }, t("backup.failed", { reason: describeError(e) })));
    } finally {
      now.disabled = purged;
    }
  });
  loadList();
  return h(
    "section",
    { "aria-labelledby": "sec-backup", class: "card" },
    h("h2", { id: "sec-backup" }, t("tenant.backups")),
    h("p", null, purged ? t("backup.purged") : t("backup.explain")),
    h("div", { class: "buttons" }, now),
    status,
    list,
  );
}

function historySection(history) {
  return h(
    "section",
    { "aria-labelledby": "sec-history", class: "card wide" },
    h("h2", { id: "sec-history" }, t("tenant.history")),
    history.events.length
      ? h(
          "div",
          { class: "table-wrap", role: "region", "aria-labelledby": "sec-history", tabindex: "0" },
          h(
            "table",
            { class: "list", id: "history" },
            h("caption", { class: "visually-hidden" }, t("history.caption")),
            h("thead", null, h("tr", null, ["history.at", "history.event", "history.actor", "history.detail"].map((k) => h("th", { scope: "col" }, t(k))))),
            h(
              "tbody",
              null,
              history.events.map((e) =>
                h(
                  "tr",
                  { dataset: { event: e.event } },
                  h("td", { "data-label": t("history.at") }, h("time", { datetime: e.at }, fmtDateTime(e.at))),
                  h("td", { "data-label": t("history.event") }, eventText(e.event)),
                  h("td", { "data-label": t("history.actor") }, e.actor),
                  h("td", { "data-label": t("history.detail") }, e.detail || "—"),
                ),
              ),
            ),
          ),
        )
      : h("p", null, t("history.none")),
  );
}

export async function tenantView(ctx, id) {
  const back = h("p", { class: "crumbs" }, h("a", { href: "#/tenants" }, "← ", t("tenant.back")));
  let tenant, history, usage;
  try {
    [tenant, history, usage] = await Promise.all([
      api(`/api/tenant/superadmin/tenants/${enc(id)}`),
      api(`/api/tenant/superadmin/tenants/${enc(id)}/history`),
      api(`/api/tenant/superadmin/tenants/${enc(id)}/usage?days=30`),
    ]);
  } catch (e) {
    if (e instanceof ApiError && (e.status === 404 || e.status === 400)) {
      flash = null;
      return [back, h("h1", { tabindex: "-1" }, t("tenant.not_found_title")), h("p", { class: "notice error", role: "alert" }, t("tenant.not_found", { id }))];
    }
    throw e;
  }
  const message = flash && h("p", { class: `notice ${flash.ok ? "ok" : "error"}`, id: "action-result", role: flash.ok ? "status" : "alert" }, flash.text);
  if (flash) ctx.announce(flash.text);
  flash = null;
  return [
    back,
    h("h1", { tabindex: "-1" }, tenant.tenant_name, " ", h("span", { class: "sub" }, tenant.tenant_id)),
    h("p", { class: "lead" }, statusBadge(tenant.status), " ", kindText(tenant.application_kind)),
    message,
    h(
      "div",
      { class: "grid" },
      registry(tenant),
      actions(ctx, tenant),
      usageSection(usage),
      schemaSection(ctx, tenant.tenant_id),
      backupSection(ctx, tenant),
      historySection(history),
    ),
  ];
}
