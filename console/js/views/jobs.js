// The jobs table: newest first, filtered by status and provider, refreshed live, paged with "Load more".

import { api } from "../api.js";
import { h, replace } from "../dom.js";
import { STATUSES, cost, statusLabel, when } from "../format.js";
import { alertBox, every, heading, progressBar, statusBadge } from "../widgets.js";

const REFRESH_SECONDS = 3;
const PAGE = 20;
export const PROVIDERS = ["vidgo", "kie", "aimlapi", "pixwith", "apimart"];

function select(id, label, options, value) {
  const control = h(
    "select",
    { id, name: id },
    h("option", { value: "" }, "All"),
    options.map((option) => h("option", { value: option, selected: option === value }, statusLabel(option))),
  );
  return [h("div", { class: "field" }, h("label", { for: id }, label), control), control];
}

function row(job) {
  const prompt = job.request && job.request.prompt ? job.request.prompt : "";
  return h(
    "tr",
    { dataset: { jobId: job.id, status: job.status } },
    h(
      "th",
      { scope: "row", "data-label": "Job" },
      h(
        "div",
        null,
        h("a", { href: `#/jobs/${encodeURIComponent(job.id)}` }, job.id),
        h("span", { class: "prompt muted" }, prompt.length > 60 ? `${prompt.slice(0, 60)}…` : prompt),
      ),
    ),
    h("td", { "data-label": "Status" }, statusBadge(job.status)),
    h("td", { "data-label": "Provider" }, job.provider),
    h("td", { "data-label": "Progress" }, progressBar(job, `Progress of ${job.id}`)),
    h("td", { "data-label": "Cost" }, cost(job.cost)),
    h("td", { "data-label": "Created" }, h("time", { datetime: job.created_at }, when(job.created_at))),
    h("td", { "data-label": "Completed by" }, job.completed_by || "—"),
  );
}

export function jobsView(root, { query }) {
  const status = STATUSES.includes(query.get("status")) ? query.get("status") : "";
  const provider = PROVIDERS.includes(query.get("provider")) ? query.get("provider") : "";
  const [statusField, statusSelect] = select("filter-status", "Status", STATUSES, status);
  const [providerField, providerSelect] = select("filter-provider", "Provider", PROVIDERS, provider);
  const live = h("input", { id: "live-refresh", type: "checkbox", checked: true });
  const summary = h("p", { id: "jobs-summary", role: "status", "aria-live": "polite", class: "muted" }, "Loading jobs…");
  const problem = h("div");
  const body = h("tbody");
  const more = h("button", { type: "button", hidden: true }, "Load more");
  const table = h(
    "table",
    { class: "jobs", id: "jobs-table" },
    h("caption", { class: "visually-hidden" }, "Jobs, newest first"),
    h(
      "thead",
      null,
      h(
        "tr",
        null,
        ["Job", "Status", "Provider", "Progress", "Cost", "Created", "Completed by"].map((name) =>
          h("th", { scope: "col" }, name),
        ),
      ),
    ),
    body,
  );

  let extraPages = [];
  let nextCursor = null;
  let known = new Map();

  const filters = () => ({ status: statusSelect.value, provider: providerSelect.value });

  async function refresh() {
    table.setAttribute("aria-busy", "true");
    try {
      // Live refresh re-reads the first page (and as many more as were loaded) so the rows stay current.
      const first = await api.jobs({ ...filters(), limit: PAGE });
      const items = [...first.items];
      let cursor = first.next_cursor;
      for (let page = 0; page < extraPages.length && cursor; page += 1) {
        const next = await api.jobs({ ...filters(), limit: PAGE, cursor });
        items.push(...next.items);
        cursor = next.next_cursor;
      }
      nextCursor = cursor;
      render(items);
      replace(problem);
    } catch (error) {
      replace(problem, alertBox(`The jobs could not be loaded: ${error.message}`));
      if (error.status === 401) window.dispatchEvent(new CustomEvent("relay:unauthorized"));
    } finally {
      table.removeAttribute("aria-busy");
    }
  }

  function render(items) {
    const changed = items.filter((job) => known.has(job.id) && known.get(job.id) !== job.status);
    known = new Map(items.map((job) => [job.id, job.status]));
    replace(body, items.length ? items.map(row) : h("tr", null, h("td", { colspan: "7" }, "No jobs match these filters.")));
    more.hidden = !nextCursor;
    const time = new Date().toLocaleTimeString();
    const changes = changed.map((job) => `${job.id} is ${statusLabel(job.status)}`).join("; ");
    replace(summary, `${items.length} job${items.length === 1 ? "" : "s"} shown, updated ${time}.${changes ? ` ${changes}.` : ""}`);
  }

  function applyFilters() {
    extraPages = [];
    const params = new URLSearchParams(Object.entries(filters()).filter(([, value]) => value));
    // Filters (never the key) live in the address, so a filtered view can be bookmarked.
    history.replaceState(null, "", `#/jobs${params.size ? `?${params}` : ""}`);
    refresh();
  }
  statusSelect.addEventListener("change", applyFilters);
  providerSelect.addEventListener("change", applyFilters);
  more.addEventListener("click", async () => {
    extraPages.push(nextCursor);
    await refresh();
  });

  let stop = every(REFRESH_SECONDS, refresh);
  live.addEventListener("change", () => {
    stop();
    stop = live.checked ? every(REFRESH_SECONDS, refresh) : () => {};
  });

  replace(
    root,
    heading("Jobs"),
    h(
      "form",
      { class: "filters", "aria-label": "Filter jobs", role: "search" },
      statusField,
      providerField,
      h("div", { class: "field checkbox" }, live, h("label", { for: "live-refresh" }, `Live refresh (every ${REFRESH_SECONDS} s)`)),
    ),
    summary,
    problem,
    h("div", { class: "table-wrap" }, table),
    more,
  );
  refresh();
  return () => stop();
}
