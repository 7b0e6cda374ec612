// One job: status and progress (live), the video on its presigned URL, outputs, attempts, the timeline
// derived from the job's fields (and the status changes seen while the page is open), waiting, cancel.

import { ApiError, api } from "../api.js";
import { h, replace } from "../dom.js";
import { TERMINAL, bytes, cost, statusLabel, when } from "../format.js";
import { alertBox, every, heading, progressBar, statusBadge } from "../widgets.js";

const REFRESH_SECONDS = 2;

function dl(pairs) {
  return h(
    "dl",
    { class: "details" },
    pairs.filter(([, value]) => value !== undefined && value !== null && value !== "").map(([term, value]) => [h("dt", null, term), h("dd", null, value)]),
  );
}

function outputs(job) {
  if (!job.outputs || !job.outputs.length) return null;
  return h(
    "section",
    { "aria-labelledby": "outputs-title" },
    h("h2", { id: "outputs-title" }, job.outputs.length > 1 ? "Videos" : "Video"),
    job.outputs.map((output, index) =>
      h(
        "figure",
        { class: "output" },
        h("video", {
          controls: true,
          preload: "metadata",
          playsinline: true,
          src: output.url,
          "aria-label": `Video ${index + 1} of job ${job.id}`,
          dataset: { output: String(index) },
        }),
        h(
          "figcaption",
          null,
          dl([
            ["Size", bytes(output.bytes)],
            ["Type", output.content_type],
            ["SHA-256", h("code", { class: "hash" }, output.sha256)],
            ["Link expires", when(output.expires_at)],
          ]),
          h("a", { href: output.url, rel: "noopener noreferrer", target: "_blank" }, `Open video ${index + 1}`),
        ),
      ),
    ),
  );
}

function attempts(job) {
  if (!job.attempts || !job.attempts.length) return h("p", { class: "muted" }, "No provider has been tried yet.");
  return h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      { id: "attempts" },
      h("caption", { class: "visually-hidden" }, "Attempts to hand the job to a provider"),
      h("thead", null, h("tr", null, ["When", "Provider", "Outcome", "HTTP", "Code", "Message"].map((name) => h("th", { scope: "col" }, name)))),
      h(
        "tbody",
        null,
        job.attempts.map((attempt) =>
          h(
            "tr",
            null,
            h("td", { "data-label": "When" }, when(attempt.at)),
            h("td", { "data-label": "Provider" }, attempt.provider),
            h("td", { "data-label": "Outcome" }, attempt.outcome),
            h("td", { "data-label": "HTTP" }, attempt.http_status ?? "—"),
            h("td", { "data-label": "Code" }, attempt.error_code || "—"),
            h("td", { "data-label": "Message" }, attempt.message || "—"),
          ),
        ),
      ),
    ),
  );
}

/** What the job's fields say happened, oldest first, plus the status changes this page saw. */
function timeline(job, seen) {
  const events = [{ at: job.created_at, text: "Submitted" }];
  for (const attempt of job.attempts || []) {
    events.push({ at: attempt.at, text: `Handed to ${attempt.provider}: ${attempt.outcome}${attempt.error_code ? ` (${attempt.error_code})` : ""}` });
  }
  if (job.waiting) {
    const provider = job.waiting.provider ? ` for ${job.waiting.provider}` : "";
    events.push({ at: job.updated_at, text: `Waiting${provider}: ${job.waiting.reason}` });
  }
  // What this page saw change, but for the final status, which the completion time already shows.
  for (const change of seen.filter((c) => !(job.completed_at && c.status === job.status))) events.push({ at: change.at, text: `Seen ${statusLabel(change.status)}`, seen: true });
  if (job.completed_at) {
    events.push({ at: job.completed_at, text: `${statusLabel(job.status)}${job.completed_by ? ` (by ${job.completed_by})` : ""}` });
  } else {
    events.push({ at: job.updated_at, text: `Last change: ${statusLabel(job.status)}` });
  }
  events.sort((a, b) => new Date(a.at) - new Date(b.at));
  return h(
    "ol",
    { class: "timeline", id: "timeline" },
    events.map((event) => h("li", { class: event.seen ? "seen" : null }, h("time", { datetime: event.at }, when(event.at)), " ", event.text)),
  );
}

function waiting(job) {
  if (!job.waiting) return null;
  const next = job.waiting.next_attempt_at ? ` Next attempt ${when(job.waiting.next_attempt_at)}.` : "";
  const provider = job.waiting.provider ? ` (${job.waiting.provider})` : "";
  return h("p", { class: "notice", id: "waiting" }, `Waiting for a provider${provider}: ${job.waiting.reason}.${next}`);
}

export function jobView(root, { id }) {
  const title = heading(`Job ${id}`);
  const state = h("section", { id: "job-state", "aria-live": "polite", "aria-atomic": "true", "aria-label": "Status" });
  const problem = h("div");
  const outputsHolder = h("div", { id: "job-outputs" });
  const detailsHolder = h("div");
  const cancelArea = h("div", { class: "actions" });
  const seen = [];
  let shown = null; // the job as last rendered
  let stop = () => {};

  function renderState(job) {
    replace(
      state,
      h("p", { class: "state-line" }, "Status ", statusBadge(job.status), " ", progressBar(job, "Progress")),
      waiting(job),
      job.error ? alertBox(`${job.error.code}: ${job.error.message}`, job.error.provider_code ? `Provider code ${job.error.provider_code}` : null) : null,
    );
  }

  function renderCancel(job) {
    if (TERMINAL.has(job.status)) {
      replace(cancelArea);
      return;
    }
    const ask = h("button", { type: "button", id: "cancel" }, "Cancel job");
    ask.addEventListener("click", () => {
      const confirm = h("button", { type: "button", class: "danger", id: "confirm-cancel" }, "Yes, cancel it");
      const keep = h("button", { type: "button" }, "Keep it running");
      keep.addEventListener("click", () => {
        renderCancel(shown);
        cancelArea.querySelector("button").focus();
      });
      confirm.addEventListener("click", async () => {
        confirm.disabled = true;
        try {
          update(await api.cancel(id));
        } catch (error) {
          replace(problem, alertBox(`The job could not be canceled: ${error.message}`));
          renderCancel(shown);
        }
      });
      replace(
        cancelArea,
        h("p", null, "Canceling stops tracking the job. A provider may still charge for a task it already started."),
        confirm,
        " ",
        keep,
      );
      confirm.focus();
    });
    replace(cancelArea, ask);
  }

  function update(job) {
    if (shown && shown.status !== job.status) seen.push({ at: new Date().toISOString(), status: job.status });
    const outputsChanged = !shown || JSON.stringify((shown.outputs || []).map((o) => o.sha256)) !== JSON.stringify((job.outputs || []).map((o) => o.sha256));
    shown = job;
    renderState(job);
    renderCancel(job);
    // The player is rebuilt only when the outputs change, so a refresh never interrupts playback.
    if (outputsChanged) replace(outputsHolder, outputs(job));
    const request = job.request || {};
    replace(
      detailsHolder,
      h("section", { "aria-labelledby": "details-title" }, h("h2", { id: "details-title" }, "Details"),
        dl([
          ["Provider", job.provider],
          ["Provider task", job.provider_task_id],
          ["Prompt", request.prompt],
          ["Negative prompt", request.negative_prompt],
          ["Duration", request.duration ? `${request.duration} s` : null],
          ["Aspect ratio", request.aspect_ratio],
          ["Sound", request.sound ? "yes" : "no"],
          ["Quality", request.quality],
          ["Outputs", String(request.num_outputs || 1)],
          ["Cost", cost(job.cost)],
          ["Completed by", job.completed_by],
          ["Created", when(job.created_at)],
          ["Completed", job.completed_at ? when(job.completed_at) : null],
          ...Object.entries(job.metadata || {}).map(([key, value]) => [`metadata.${key}`, value]),
        ])),
      h("section", { "aria-labelledby": "attempts-title" }, h("h2", { id: "attempts-title" }, "Attempts"), attempts(job)),
      h("section", { "aria-labelledby": "timeline-title" }, h("h2", { id: "timeline-title" }, "Timeline"), timeline(job, seen)),
    );
    if (TERMINAL.has(job.status)) stop();
  }

  async function refresh() {
    try {
      update(await api.job(id));
      replace(problem);
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) window.dispatchEvent(new CustomEvent("relay:unauthorized"));
      const text = error instanceof ApiError && error.status === 404 ? "No such job (or it belongs to another tenant)." : error.message;
      replace(problem, alertBox(text));
      if (error instanceof ApiError && error.status === 404) stop();
    }
  }

  replace(root, h("p", null, h("a", { href: "#/jobs" }, "← All jobs")), title, state, problem, cancelArea, outputsHolder, detailsHolder);
  refresh().then(() => {
    if (!shown || !TERMINAL.has(shown.status)) stop = every(REFRESH_SECONDS, refresh);
  });
  return () => stop();
}
