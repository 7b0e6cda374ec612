// Small pieces several views use.

import { h } from "./dom.js";
import { progress, statusLabel } from "./format.js";

export function statusBadge(status) {
  return h("span", { class: `badge status-${status}` }, statusLabel(status));
}

export function progressBar(job, label) {
  const value = progress(job);
  if (value === null) return h("span", { class: "muted" }, "—");
  return h(
    "span",
    { class: "progress" },
    h("progress", { max: "100", value: String(value), "aria-label": label }),
    h("span", { class: "progress-value" }, `${value}%`),
  );
}

/** An error box: role=alert so it is announced when it appears. */
export function alertBox(message, detail) {
  return h("div", { class: "alert", role: "alert" }, h("p", null, message), detail ? h("p", { class: "muted" }, detail) : null);
}

export function heading(text) {
  return h("h1", { tabindex: "-1", class: "view-title" }, text);
}

/** Refreshes `run` every `seconds` while the page is visible; returns a stop function. */
export function every(seconds, run) {
  let timer = null;
  let stopped = false;
  const tick = async () => {
    timer = null;
    if (stopped) return;
    if (document.visibilityState === "visible") {
      try {
        await run();
      } catch {
        // the view shows its own error; keep refreshing
      }
    }
    if (!stopped) timer = setTimeout(tick, seconds * 1000);
  };
  timer = setTimeout(tick, seconds * 1000);
  return () => {
    stopped = true;
    if (timer) clearTimeout(timer);
  };
}
