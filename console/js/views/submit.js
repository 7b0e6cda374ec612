// A new job, with the form built from GET /v1/providers: a field the chosen provider cannot honour is disabled
// (with `auto`, a field no enabled provider offers), and a 422's details appear beside the fields they name.

import { ApiError, api } from "../api.js";
import { h, replace } from "../dom.js";
import { alertBox, heading } from "../widgets.js";

// field -> whether a provider's capabilities allow it at all
const OFFERED = {
  negative_prompt: (c) => c.negative_prompt,
  sound: (c) => c.sound,
  quality: (c) => (c.qualities || []).length > 0,
  first_frame_url: (c) => c.first_frame,
  last_frame_url: (c) => c.last_frame,
  cfg_scale: (c) => c.cfg_scale,
  prompt_optimization: (c) => c.prompt_optimization,
  watermark: (c) => c.watermark,
  motion_control: (c) => Boolean(c.motion_control),
};

function field(name, label, control, help) {
  const error = h("p", { class: "field-error", id: `${name}-error`, "aria-live": "polite" });
  const hint = h("p", { class: "muted hint", id: `${name}-hint` }, help || "");
  control.id = control.id || `job-${name}`;
  control.name = control.name || name;
  control.setAttribute("aria-describedby", `${name}-hint ${name}-error`);
  const wrap = h("div", { class: "field", dataset: { field: name } }, h("label", { for: control.id }, label), control, hint, error);
  return { wrap, control, error, hint, help: help || "" };
}

function checkbox(name, label, help) {
  const control = h("input", { type: "checkbox", id: `job-${name}`, name });
  const built = field(name, label, control, help);
  built.wrap.classList.add("checkbox");
  return built;
}

function options(control, values, { blank, labels } = {}) {
  const current = control.value;
  replace(
    control,
    blank ? h("option", { value: "" }, blank) : null,
    values.map((value) => h("option", { value: String(value) }, labels ? labels(value) : String(value))),
  );
  if ([...control.options].some((option) => option.value === current)) control.value = current;
}

export function submitView(root) {
  const problem = h("div");
  const container = h("div", null, h("p", { role: "status" }, "Loading what each provider can do…"));
  replace(root, heading("New job"), problem, container);
  api
    .providers()
    .then((catalog) => build(container, problem, catalog.providers.filter((p) => p.enabled)))
    .catch((error) => replace(problem, alertBox(`The providers could not be loaded: ${error.message}`)));
  return () => {};
}

function build(container, problem, providers) {
  const byName = new Map(providers.map((p) => [p.name, p.capabilities]));
  const provider = field("provider", "Provider", h("select"), "auto picks the first provider in the routing order that can honour every field.");
  options(provider.control, ["auto", ...providers.map((p) => p.name)]);
  const prompt = field("prompt", "Prompt", h("textarea", { rows: "4", required: true }));
  const negative = field("negative_prompt", "Negative prompt", h("textarea", { rows: "2" }));
  const duration = field("duration", "Duration (seconds)", h("select"));
  const aspect = field("aspect_ratio", "Aspect ratio", h("select"));
  const quality = field("quality", "Quality", h("select"));
  const outputs = field("num_outputs", "Number of videos", h("select"));
  const sound = checkbox("sound", "Sound");
  const optimize = checkbox("prompt_optimization", "Let the provider rewrite the prompt");
  const watermark = field("watermark", "Watermark", h("select"));
  options(watermark.control, ["on", "off"], { blank: "Provider default" });
  const first = field("first_frame_url", "First frame image URL", h("input", { type: "url", inputmode: "url", placeholder: "https://…" }));
  const last = field("last_frame_url", "Last frame image URL", h("input", { type: "url", inputmode: "url", placeholder: "https://…" }));
  const cfg = field("cfg_scale", "CFG scale (0 to 1)", h("input", { type: "number", min: "0", max: "1", step: "0.05" }));
  const webhook = field("webhook_url", "Webhook URL", h("input", { type: "url", inputmode: "url", placeholder: "https://…" }), "Receives signed job events.");
  const motionImage = field("motion_control.image_url", "Character image URL", h("input", { type: "url", id: "job-motion-image" }));
  const motionVideo = field("motion_control.video_url", "Motion reference video URL", h("input", { type: "url", id: "job-motion-video" }));
  const motionOrientation = field("motion_control.character_orientation", "Character orientation", h("select", { id: "job-motion-orientation" }));
  options(motionOrientation.control, ["image", "video"], { blank: "Provider default" });
  const motionOffered = providers.some((p) => OFFERED.motion_control(p.capabilities));
  const motionToggle = checkbox("motion_control", "Motion control: animate a character image with a reference video's motion");
  const motion = motionOffered
    ? h("fieldset", { class: "motion" }, h("legend", null, "Motion control"), motionToggle.wrap, motionImage.wrap, motionVideo.wrap, motionOrientation.wrap)
    : null;

  const fields = {
    provider, prompt, negative_prompt: negative, duration, aspect_ratio: aspect, quality, num_outputs: outputs, sound,
    prompt_optimization: optimize, watermark, first_frame_url: first, last_frame_url: last, cfg_scale: cfg, webhook_url: webhook,
  };
  if (motionOffered) {
    Object.assign(fields, {
      motion_control: motionToggle,
      "motion_control.image_url": motionImage,
      "motion_control.video_url": motionVideo,
      "motion_control.character_orientation": motionOrientation,
    });
  }
  const button = h("button", { type: "submit", class: "primary" }, "Submit job");
  const formMessage = h("div", { id: "submit-message", tabindex: "-1" });
  const form = h(
    "form",
    { method: "post", class: "card", id: "job-form", novalidate: true },
    provider.wrap, prompt.wrap, negative.wrap,
    h("div", { class: "row" }, duration.wrap, aspect.wrap, quality.wrap, outputs.wrap),
    h("div", { class: "row" }, sound.wrap, optimize.wrap, watermark.wrap),
    h("fieldset", null, h("legend", null, "Image to video"), first.wrap, last.wrap),
    motion,
    cfg.wrap, webhook.wrap,
    formMessage,
    button,
  );

  function chosen() {
    const name = provider.control.value;
    return name === "auto" ? [...byName.values()] : [byName.get(name)];
  }

  function setOffered(built, offered, why) {
    built.control.disabled = !offered;
    built.wrap.classList.toggle("unavailable", !offered);
    built.hint.textContent = offered ? built.help : why;
  }

  // What the chosen provider (or, with auto, any enabled provider) can honour.
  function refreshCapabilities() {
    const caps = chosen();
    const who = provider.control.value === "auto" ? "no enabled provider" : provider.control.value;
    const union = (pick) => [...new Set(caps.flatMap(pick))];
    options(duration.control, union((c) => c.durations || []).sort((a, b) => a - b));
    options(aspect.control, union((c) => c.aspect_ratios || []), { blank: "Default" });
    options(quality.control, union((c) => c.qualities || []), { blank: "Default" });
    const most = Math.max(1, ...caps.map((c) => c.max_outputs || 1));
    options(outputs.control, Array.from({ length: most }, (_, i) => i + 1));
    const maxChars = Math.max(...caps.map((c) => c.max_prompt_chars || 2500));
    prompt.control.maxLength = maxChars;
    prompt.hint.textContent = `Up to ${maxChars} characters.`;
    for (const [name, offered] of Object.entries(OFFERED)) {
      if (!fields[name]) continue;
      setOffered(fields[name], caps.some(offered), `Not offered by ${who}.`);
    }
    if (fields.motion_control) {
      const on = fields.motion_control.control.checked && !fields.motion_control.control.disabled;
      for (const name of ["motion_control.image_url", "motion_control.video_url", "motion_control.character_orientation"]) {
        setOffered(fields[name], on, on ? "" : "Turn on motion control first.");
      }
    }
    const withImage = Boolean(first.control.value.trim());
    if (withImage && !caps.some((c) => c.aspect_ratio_with_image)) {
      setOffered(aspect, false, "Image to video takes the first frame's own aspect ratio here.");
    } else {
      setOffered(aspect, true, "");
    }
  }
  form.addEventListener("change", refreshCapabilities);
  form.addEventListener("input", (event) => {
    if (event.target === first.control) refreshCapabilities();
  });
  refreshCapabilities();

  function body() {
    const value = (built) => (built.control.disabled ? "" : built.control.value.trim());
    const request = { provider: provider.control.value, prompt: prompt.control.value.trim() };
    const text = { negative_prompt: negative, first_frame_url: first, last_frame_url: last, webhook_url: webhook, aspect_ratio: aspect, quality };
    for (const [name, built] of Object.entries(text)) if (value(built)) request[name] = value(built);
    if (value(duration)) request.duration = Number(value(duration));
    if (value(outputs) && value(outputs) !== "1") request.num_outputs = Number(value(outputs));
    if (value(cfg) !== "") request.cfg_scale = Number(value(cfg));
    if (!sound.control.disabled && sound.control.checked) request.sound = true;
    if (!optimize.control.disabled && optimize.control.checked) request.prompt_optimization = true;
    if (value(watermark)) request.watermark = value(watermark) === "on";
    if (fields.motion_control && !motionToggle.control.disabled && motionToggle.control.checked) {
      request.motion_control = { image_url: value(motionImage), video_url: value(motionVideo) };
      if (value(motionOrientation)) request.motion_control.character_orientation = value(motionOrientation);
    }
    return request;
  }

  function clearErrors() {
    for (const built of Object.values(fields)) {
      built.error.textContent = "";
      built.control.removeAttribute("aria-invalid");
    }
    replace(formMessage);
  }

  function showDetails(error) {
    const details = Array.isArray(error.details) ? error.details : [];
    const unplaced = [];
    let firstInvalid = null;
    for (const detail of details) {
      const path = String(detail.field || "");
      const built = fields[path] || fields[path.split(".")[0]];
      const text = detail.rule ? `${detail.provider ? `${detail.provider} ` : ""}${detail.rule}` : detail.message || "invalid";
      if (built) {
        built.error.textContent = built.error.textContent ? `${built.error.textContent}; ${text}` : text;
        built.control.setAttribute("aria-invalid", "true");
        firstInvalid = firstInvalid || built.control;
      } else {
        unplaced.push(`${path || "request"}: ${text}`);
      }
    }
    replace(formMessage, alertBox(error.message, unplaced.join("; ") || null));
    (firstInvalid || formMessage).focus?.();
  }

  // One Idempotency-Key per distinct request: a retry of the same form after a lost answer is the same job.
  let previous = { body: null, key: null };
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors();
    const request = body();
    if (!request.prompt) {
      prompt.error.textContent = "Enter a prompt.";
      prompt.control.setAttribute("aria-invalid", "true");
      prompt.control.focus();
      return;
    }
    const serialized = JSON.stringify(request);
    if (previous.body !== serialized) previous = { body: serialized, key: crypto.randomUUID() };
    button.disabled = true;
    replace(formMessage, h("p", { role: "status" }, "Submitting…"));
    try {
      const job = await api.submit(request, previous.key);
      previous = { body: null, key: null };
      window.location.hash = `#/jobs/${encodeURIComponent(job.id)}`;
    } catch (error) {
      if (error instanceof ApiError && error.status === 422) showDetails(error);
      else {
        if (error instanceof ApiError && error.status === 401) window.dispatchEvent(new CustomEvent("relay:unauthorized"));
        replace(formMessage, alertBox(`The job was not submitted: ${error.message}`));
      }
    } finally {
      button.disabled = false;
    }
  });
  replace(problem);
  replace(container, form);
}
