// A run's events, read off its WebSocket in a worker, away from the page's
// main thread. A big live run sends tens of thousands of messages a second;
// receiving and parsing each on the main thread takes the frames the tree
// needs to draw. Here they are parsed and handed over in batches, at most
// one per animation frame's worth of time.
//
// Started by `followRun` (api.js) with one message:
//   {url: "ws://…/api/runs/ID/events", protocols: [...], fromSeq: 0}
// Posts `{events: [...]}` batches; the last one holds `run_finished`. A
// dropped connection opens again from the last seq seen, so nothing is
// missed or repeated.

const BATCH_EVERY_MS = 16;
const RETRY_MS = 300;

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
    if (!finished) setTimeout(() => open({ url, protocols }), RETRY_MS);
  };
}

onmessage = (message) => {
  lastSeq = message.data.fromSeq || 0;
  open(message.data);
};
