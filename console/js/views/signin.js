// Sign in with an API key: checked against the API before it is kept (in sessionStorage only).

import { ApiError, apiBase, call } from "../api.js";
import { h, replace } from "../dom.js";
import { signIn } from "../session.js";
import { alertBox, heading } from "../widgets.js";

export function signInView(root, { next, notice }) {
  const message = h("div", { id: "sign-in-message" });
  const input = h("input", {
    id: "api-key",
    name: "api-key",
    type: "password",
    required: true,
    autocomplete: "off",
    spellcheck: "false",
    autocapitalize: "off",
    "aria-describedby": "api-key-help sign-in-message",
  });
  const button = h("button", { type: "submit", class: "primary" }, "Sign in");
  // method=post: were this form ever submitted without the script, the key would not land in a URL.
  const form = h(
    "form",
    { method: "post", class: "card narrow", "aria-labelledby": "sign-in-title", novalidate: true },
    h("div", { class: "field" }, h("label", { for: "api-key" }, "API key"), input),
    h(
      "p",
      { id: "api-key-help", class: "muted" },
      "Kept in this browser tab only (session storage) and sent to the API in the Authorization header.",
    ),
    button,
    message,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const key = input.value.trim();
    if (!key) {
      replace(message, alertBox("Enter an API key."));
      input.focus();
      return;
    }
    button.disabled = true;
    replace(message, h("p", { role: "status" }, "Checking the key…"));
    try {
      await call("GET", "jobs", { query: { limit: 1 }, key });
      signIn(key);
      input.value = "";
      window.location.hash = next || "#/jobs";
    } catch (error) {
      const text =
        error instanceof ApiError && error.status === 401
          ? "This API key was not accepted. Check that it is complete and not revoked."
          : error.message;
      replace(message, alertBox(text, error instanceof ApiError && error.status === 401 ? null : `API: ${apiBase()}`));
      input.select();
      input.focus();
    } finally {
      button.disabled = false;
    }
  });
  const title = heading("Sign in");
  title.id = "sign-in-title";
  replace(root, title, notice ? alertBox(notice) : null, form);
  input.focus();
  return () => {};
}
