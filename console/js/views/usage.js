// Usage: the caller's limits and what it used this month (GET /v1/usage), with a chart of credits by
// provider. A deployment without usage reporting answers 404, and the view says so.

import { ApiError, api } from "../api.js";
import { h, replace, svg } from "../dom.js";
import { alertBox, heading } from "../widgets.js";
import { PROVIDERS } from "./jobs.js";

/** The first object in the answer whose keys are provider names and whose values are numbers. */
export function creditsByProvider(usage) {
  const queue = [usage];
  while (queue.length) {
    const value = queue.shift();
    if (!value || typeof value !== "object") continue;
    const entries = Object.entries(value);
    if (entries.length && entries.every(([key, amount]) => PROVIDERS.includes(key) && typeof amount === "number")) {
      return entries;
    }
    queue.push(...Object.values(value));
  }
  return [];
}

function chart(entries) {
  const width = 480;
  const bar = 28;
  const gap = 12;
  const labelWidth = 90;
  const most = Math.max(...entries.map(([, amount]) => amount), 1);
  const height = entries.length * (bar + gap) + gap;
  const summary = entries.map(([name, amount]) => `${name} ${amount}`).join(", ");
  return h(
    "figure",
    { class: "chart" },
    svg(
      "svg",
      { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": `Credits this month by provider: ${summary}`, id: "usage-chart" },
      entries.map(([name, amount], index) => {
        const y = gap + index * (bar + gap);
        const length = Math.max(2, ((width - labelWidth - 70) * amount) / most);
        return svg(
          "g",
          null,
          svg("text", { x: "0", y: String(y + bar * 0.7), class: "chart-label" }, name),
          svg("rect", { x: String(labelWidth), y: String(y), width: String(length), height: String(bar), rx: "3", class: "chart-bar" }),
          svg("text", { x: String(labelWidth + length + 6), y: String(y + bar * 0.7), class: "chart-value" }, amount.toLocaleString()),
        );
      }),
    ),
    h("figcaption", null, "Credits this month by provider"),
  );
}

function table(usage) {
  const rows = [];
  const walk = (prefix, value) => {
    if (value && typeof value === "object" && !Array.isArray(value)) {
      for (const [key, inner] of Object.entries(value)) walk(prefix ? `${prefix}.${key}` : key, inner);
    } else {
      rows.push(h("tr", null, h("th", { scope: "row" }, prefix), h("td", null, value === null ? "—" : String(value))));
    }
  };
  walk("", usage);
  return h("table", { id: "usage-table" }, h("caption", null, "Everything the API reports"), h("tbody", null, rows));
}

export function usageView(root) {
  const body = h("div", { "aria-live": "polite" }, h("p", { role: "status" }, "Loading usage…"));
  replace(root, heading("Usage"), body);
  api
    .usage()
    .then((usage) => {
      const entries = creditsByProvider(usage);
      replace(
        body,
        typeof usage.active_jobs === "number" ? h("p", { class: "stat" }, `Active jobs: ${usage.active_jobs}`) : null,
        entries.length ? chart(entries) : h("p", { class: "muted" }, "No credits used this month."),
        h("div", { class: "table-wrap" }, table(usage)),
      );
    })
    .catch((error) => {
      if (error instanceof ApiError && error.status === 404) {
        replace(body, h("p", { class: "notice", id: "usage-unavailable" }, "Usage is not available on this deployment: its API does not report usage (GET /v1/usage answered 404)."));
      } else {
        if (error instanceof ApiError && error.status === 401) window.dispatchEvent(new CustomEvent("relay:unauthorized"));
        replace(body, alertBox(`Usage could not be loaded: ${error.message}`));
      }
    });
  return () => {};
}
