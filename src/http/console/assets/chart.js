// API calls per day as a bar chart drawn on the page (inline SVG), with the same
// figures as a table for whoever does not see the chart.

import { h, s } from "./dom.js";
import { t, fmtNumber, fmtDay } from "./i18n.js";

/** The last `days` UTC days, oldest first, as YYYY-MM-DD. */
function lastDays(days) {
  const out = [];
  const today = new Date();
  const base = Date.UTC(today.getUTCFullYear(), today.getUTCMonth(), today.getUTCDate());
  for (let i = days - 1; i >= 0; i--) {
    out.push(new Date(base - i * 86400000).toISOString().slice(0, 10));
  }
  return out;
}

/** A "nice" ceiling for the axis: 1, 2 or 5 times a power of ten. */
function niceMax(v) {
  if (v <= 2) return 2;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 5, 10]) if (v <= m * p) return m * p;
  return 10 * p;
}

export function callsChart(perDay, days = 30) {
  const calls = new Map((perDay || []).map((d) => [d.day, d.calls]));
  const series = lastDays(days).map((day) => ({ day, calls: calls.get(day) || 0 }));
  const total = series.reduce((a, d) => a + d.calls, 0);
  const max = niceMax(Math.max(...series.map((d) => d.calls)));
  const W = 600;
  const H = 180;
  const left = 44;
  const bottom = 24;
  const top = 10;
  const plotW = W - left - 8;
  const plotH = H - top - bottom;
  const bw = plotW / series.length;
  const y = (v) => top + plotH - (v / max) * plotH;

  // Gridlines at whole numbers only.
  const grid = [0, max / 2, max].filter(Number.isInteger).map((v) =>
    s(
      "g",
      { class: "grid" },
      s("line", { x1: left, x2: W - 8, y1: y(v), y2: y(v) }),
      s("text", { x: left - 6, y: y(v) + 4, "text-anchor": "end" }, fmtNumber(v)),
    ),
  );
  const bars = series.map((d, i) =>
    s(
      "rect",
      {
        class: d.calls ? "bar" : "bar zero",
        x: (left + i * bw + 1).toFixed(1),
        y: y(d.calls).toFixed(1),
        width: Math.max(1, bw - 2).toFixed(1),
        height: Math.max(d.calls ? 1 : 0, top + plotH - y(d.calls)).toFixed(1),
      },
      s("title", null, `${fmtDay(d.day)}: ${fmtNumber(d.calls)}`),
    ),
  );
  // The first label starts at its bar, the last ends at its bar: none is cut off.
  const ticks = [
    [0, "start", left],
    [Math.floor(series.length / 2), "middle", null],
    [series.length - 1, "end", W - 8],
  ].map(([i, anchor, x]) =>
    s("text", { class: "tick", x: (x ?? left + i * bw + bw / 2).toFixed(1), y: H - 6, "text-anchor": anchor }, fmtDay(series[i].day)),
  );
  const title = t("usage.chart_title", { days });
  const svg = s(
    "svg",
    { viewBox: `0 0 ${W} ${H}`, class: "chart", role: "img", "aria-label": `${title}: ${t("usage.chart_total", { n: fmtNumber(total) })}`, id: "calls-chart" },
    grid,
    bars,
    ticks,
  );
  const rows = series.filter((d) => d.calls > 0);
  return h(
    "figure",
    { class: "chart-figure" },
    svg,
    h("figcaption", null, title, " — ", t("usage.chart_total", { n: fmtNumber(total) })),
    h(
      "details",
      null,
      h("summary", null, t("usage.as_table")),
      rows.length
        ? h(
            "table",
            { class: "small" },
            h("thead", null, h("tr", null, h("th", { scope: "col" }, t("usage.day")), h("th", { scope: "col" }, t("usage.calls")))),
            h("tbody", null, rows.map((d) => h("tr", null, h("td", null, d.day), h("td", { class: "num" }, fmtNumber(d.calls))))),
          )
        : h("p", null, t("usage.no_calls")),
    ),
  );
}
