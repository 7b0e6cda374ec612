// The console: hash routes (#/jobs, #/jobs/<id>, #/submit, #/usage, #/sign-in), nothing secret in them.

import { apiBase, loadConfig } from "./api.js";
import { h, replace } from "./dom.js";
import { apiKey, signOut } from "./session.js";
import { jobView } from "./views/job.js";
import { jobsView } from "./views/jobs.js";
import { signInView } from "./views/signin.js";
import { submitView } from "./views/submit.js";
import { usageView } from "./views/usage.js";
import { alertBox } from "./widgets.js";

const main = document.getElementById("main");
const nav = document.getElementById("nav");
let dispose = () => {};
let notice = null;

function parse(hash) {
  const [path, search] = (hash.replace(/^#/, "") || "/jobs").split("?");
  const parts = path.split("/").filter(Boolean);
  return { parts, query: new URLSearchParams(search || "") };
}

function route() {
  dispose();
  dispose = () => {};
  const { parts, query } = parse(window.location.hash);
  const signedIn = Boolean(apiKey());
  nav.hidden = !signedIn;
  if (!signedIn || parts[0] === "sign-in") {
    const wanted = parts[0] && parts[0] !== "sign-in" ? window.location.hash : "#/jobs";
    dispose = signInView(main, { next: wanted, notice });
    notice = null;
    return;
  }
  for (const link of nav.querySelectorAll("a[data-route]")) {
    if (link.dataset.route === parts[0]) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  if (parts[0] === "jobs" && parts[1]) dispose = jobView(main, { id: decodeURIComponent(parts[1]) });
  else if (parts[0] === "submit") dispose = submitView(main);
  else if (parts[0] === "usage") dispose = usageView(main);
  else dispose = jobsView(main, { query });
  // Keyboard and screen-reader users land on the new view's heading.
  const title = main.querySelector("h1");
  if (title) title.focus();
}

document.getElementById("sign-out").addEventListener("click", () => {
  signOut();
  window.location.hash = "#/sign-in";
  route();
});

// Any view that gets a 401 ends the session: the key was revoked or mistyped.
window.addEventListener("relay:unauthorized", () => {
  signOut();
  notice = "The API no longer accepts this key. Sign in again.";
  window.location.hash = "#/sign-in";
  route();
});

window.addEventListener("hashchange", route);

loadConfig()
  .then(() => {
    document.getElementById("api-base").textContent = apiBase();
    route();
  })
  .catch((error) => {
    replace(main, h("h1", null, "Kling Relay console"), alertBox("The console has no API to talk to.", `${error.message}`));
  });
