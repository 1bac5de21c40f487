// The server's HTTP API and WebSockets, as the page uses them.

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
  const token = sessionStorage.getItem("hero_logic_token");
  if (token) headers.Authorization = `Bearer ${token}`;
  const response = await fetch(path, { method, headers, body: payload });
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

/**
 * A WebSocket that opens again after it drops, until the returned `stop` is
 * called (or `onEvent` returns "stop"). `path()` is asked anew on each open.
 */
function reconnecting(path, onEvent, retryMs) {
  let stopped = false;
  let socket = null;
  const open = () => {
    socket = new WebSocket(socketUrl(path()));
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
 * `run_finished`. A lagged or dropped connection re-joins from the last seq
 * seen, so nothing is missed or repeated. Returns a function that stops.
 */
export function followRun(runId, onEvent) {
  let lastSeq = 0;
  const path = () => `/api/runs/${encodeURIComponent(runId)}/events?from_seq=${lastSeq}`;
  return reconnecting(
    path,
    (event, socket) => {
      if (event.type === "lagged") {
        socket.close(); // and re-join from lastSeq
        return;
      }
      if (event.type === "run_finished") {
        onEvent(event);
        return "stop";
      }
      if (typeof event.seq === "number") lastSeq = Math.max(lastSeq, event.seq);
      onEvent(event);
    },
    300,
  );
}

/** Follow the run list: `run_queued`, `run_started`, `run_finished`. */
export function followRunList(onEvent) {
  return reconnecting(() => "/api/events", (event) => onEvent(event), 1000);
}
