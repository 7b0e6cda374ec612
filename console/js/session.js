// The API key lives in sessionStorage only: gone when the tab closes, never in a URL, a cookie or a log.

const KEY = "kling-relay.api-key";

export function apiKey() {
  return sessionStorage.getItem(KEY);
}

export function signIn(key) {
  sessionStorage.setItem(KEY, key);
}

export function signOut() {
  sessionStorage.removeItem(KEY);
}
