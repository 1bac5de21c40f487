// The server's HTTP API and WebSockets, as the page uses them.

const TOKEN_KEY = "hero_logic_token";

/** A server started with a token needs it on every request; the page asks
 * for it once and keeps it for this browser tab's session. */
function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

let asking = null;

/** Show the token dialog (once, however many requests are waiting). */
function askForToken(wrong) {
  if (!asking) {
    asking = new Promise((resolve) => {
      const dialog = document.getElementById("token-dialog");
      const input = document.getElementById("token-input");
      document.getElementById("token-wrong").hidden = !wrong;
      input.value = "";
      dialog.onsubmit = (event) => {
        event.preventDefault();
        sessionStorage.setItem(TOKEN_KEY, input.value.trim());
        dialog.close();
        asking = null;
        resolve();
        // Another credential may be another workspace or role.
        window.dispatchEvent(new Event("hero-credential"));
      };
      dialog.showModal();
      input.focus();
    });
  }
  return asking;
}

/** fetch with the token, asking for it (again) while the server refuses it. */
async function authorizedFetch(path, init) {
  for (;;) {
    const headers = { ...init.headers };
    if (token()) headers.Authorization = `Bearer ${token()}`;
    const response = await fetch(path, { ...init, headers });
    if (response.status !== 401) return response;
    await askForToken(Boolean(token()));
  }
}

/** GET a text resource of the API (stubs), or null when it is not there. */
export async function apiText(path) {
  const response = await authorizedFetch(path, { method: "GET" });
  return response.ok ? response.text() : null;
}

/** A request to the API; resolves to the JSON body, throws an Error with the
 * server's message (and `.status`, `.body`) for any 4xx/5xx. */
export async function api(path, { method, body, text } = {}) {
  method = method || (body !== undefined || text !== undefined ? "POST" : "GET");
  const headers = {};
  let payload;
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    payload = JSON.stringify(body);
  } else if (text !== undefined) {
    headers["Content-Type"] = "text/plain";
    payload = text;
  }
  const response = await authorizedFetch(path, { method, headers, body: payload });
  const data = await response.json().catch(() => null);
  if (!response.ok) {
    const error = new Error(data?.error?.message || `${method} ${path}: HTTP ${response.status}`);
    error.status = response.status;
    error.body = data;
    throw error;
  }
  return data;
}

function socketUrl(path) {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  return `${scheme}://${location.host}${path}`;
}

/** A browser cannot set headers on a WebSocket handshake, so the token
 * travels as a second offered sub-protocol, hex-encoded. */
function socketProtocols() {
  const protocols = ["hero_logic"];
  const current = token();
  if (current) {
    const hex = Array.from(new TextEncoder().encode(current), (b) => b.toString(16).padStart(2, "0")).join("");
    protocols.push(`hero_logic.bearer.${hex}`);
  }
  return protocols;
}

/**
 * A WebSocket that opens again after it drops, until the returned `stop` is
 * called (or `onEvent` returns "stop"). `path()` is asked anew on each open.
 */
function reconnecting(path, onEvent, retryMs) {
  let stopped = false;
  let socket = null;
  const open = () => {
    socket = new WebSocket(socketUrl(path()), socketProtocols());
    socket.onmessage = (message) => {
      if (onEvent(JSON.parse(message.data), socket) === "stop") {
        stopped = true;
        socket.close();
      }
    };
    socket.onclose = () => {
      if (!stopped) setTimeout(open, retryMs);
    };
  };
  open();
  return () => {
    stopped = true;
    socket?.close();
  };
}

/**
 * Follow one run's events: the history first, then live ones, until
 * `run_finished`. `onEvents` gets them in batches, in order (a worker reads
 * the socket: run_stream.js). Returns a function that stops.
 */
export function followRun(runId, onEvents) {
  const worker = new Worker("/ui/run_stream.js");
  // Opened (again) with the token as it is now: it may have been asked for meanwhile.
  const open = () => worker.postMessage({ url: socketUrl(`/api/runs/${encodeURIComponent(runId)}/events`), protocols: socketProtocols() });
  let retry = null;
  worker.onmessage = (message) => {
    if (message.data.closed) {
      retry = setTimeout(open, 300);
      return;
    }
    onEvents(message.data.events);
    if (message.data.events.some((event) => event.type === "run_finished")) worker.terminate();
  };
  open();
  return () => {
    clearTimeout(retry);
    worker.terminate();
  };
}

/** Follow the run list: `run_queued`, `run_started`, `run_finished`. */
export function followRunList(onEvent) {
  return reconnecting(() => "/api/events", (event) => onEvent(event), 1000);
}
