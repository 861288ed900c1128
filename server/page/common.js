/** What every part of the page shares: element lookup, state, the API call with the token, messages. */
export const $ = (id) => document.getElementById(id);
/** The overlay colours of stages/preview.ts (RV, Myo, LV), and grey for the mean. */
export const CLASSES = [["RV", "rgb(230,60,60)"], ["Myo", "rgb(60,200,80)"], ["LV", "rgb(70,130,255)"]];
export const state = {
  token: sessionStorage.getItem("token") ?? "",
  runs: [],
  selected: null,
  stream: null,
  scan: null,
};

/** Thrown to end an event stream for good (no reconnection). */
export class Stop extends Error {}

export const authHeaders = () => (state.token ? { Authorization: `Bearer ${state.token}` } : {});

/** fetch with the token; a 401 asks for the token; other error answers throw their JSON detail. */
export async function api(path, init = {}) {
  const res = await fetch(path, { ...init, headers: { ...authHeaders(), ...(init.headers ?? {}) } });
  if (res.status === 401) {
    $("token-form").hidden = false;
    throw new Error("this server needs a token (enter it above)");
  }
  if (!res.ok) {
    const body = await res.json().catch(() => ({}));
    throw new Error(`${res.status} ${body.error ?? res.statusText}: ${body.detail ?? ""}`);
  }
  return res;
}

export function say(id, text, error = false) {
  $(id).textContent = text;
  $(id).classList.toggle("error", error);
}

export const fmt = (x, d = 3) => (typeof x === "number" && Number.isFinite(x) ? x.toFixed(d) : "–");
