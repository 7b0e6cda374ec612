// How values read in the console.

export const STATUSES = ["submitting", "queued", "running", "archiving", "succeeded", "failed", "timed_out", "canceled"];
export const TERMINAL = new Set(["succeeded", "failed", "timed_out", "canceled"]);

export function statusLabel(status) {
  return status === "timed_out" ? "timed out" : status;
}

const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "medium" });

export function when(value) {
  if (!value) return "—";
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? String(value) : dateTime.format(date);
}

export function cost(value) {
  if (!value) return "—";
  const amount = Number(value.amount).toLocaleString(undefined, { maximumFractionDigits: 2 });
  return `${amount} credits${value.estimated ? " (est.)" : ""}`;
}

export function bytes(count) {
  if (count === undefined || count === null) return "—";
  const units = ["B", "KB", "MB", "GB"];
  let value = count;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value.toLocaleString(undefined, { maximumFractionDigits: unit ? 1 : 0 })} ${units[unit]}`;
}

export function progress(job) {
  if (job.status === "succeeded") return 100;
  return typeof job.progress === "number" ? job.progress : null;
}
