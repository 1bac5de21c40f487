// A run's events, read off its WebSocket in a worker, away from the page's
// main thread. A big live run sends tens of thousands of messages a second;
// receiving and parsing each on the main thread takes the frames the tree
// needs to draw. Here they are parsed and handed over in batches, at most
// one per animation frame's worth of time.
//
// `followRun` (api.js) sends `{url: "ws://…/api/runs/ID/events", protocols}`
// to open the socket, from the last seq seen; the worker posts `{events:
// [...]}` batches (the last one holds `run_finished`), and `{closed: true}`
// when the socket dropped before the run's end: the page then sends the
// open message again, with the token as it is now, so nothing is missed or
// repeated.

const BATCH_EVERY_MS = 16;

let batch = [];
let flushTimer = null;
let lastSeq = 0;
let finished = false;

function flush() {
  flushTimer = null;
  if (!batch.length) return;
  postMessage({ events: batch });
  batch = [];
}

function open({ url, protocols }) {
  const socket = new WebSocket(`${url}?from_seq=${lastSeq}`, protocols);
  socket.onmessage = (message) => {
    const event = JSON.parse(message.data);
    if (typeof event.seq === "number") lastSeq = Math.max(lastSeq, event.seq);
    batch.push(event);
    if (event.type === "run_finished") {
      finished = true;
      socket.close();
      clearTimeout(flushTimer);
      flush();
      return;
    }
    flushTimer ??= setTimeout(flush, BATCH_EVERY_MS);
  };
  socket.onclose = () => {
    if (finished) return;
    clearTimeout(flushTimer);
    flush();
    postMessage({ closed: true });
  };
}

onmessage = (message) => open(message.data);
