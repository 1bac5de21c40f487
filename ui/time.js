// Times as a reader takes them in: durations in µs, ms, s or minutes; when a
// run started as "3 min ago" with its date beside; the ruler's ticks over a
// run's time axis. Pure functions (ui/tests/time.test.js).

/** A duration in words: `420 µs`, `12.5 ms`, `1.30 s`, `2 min 5 s`. Rounded
 * before it is split into units, so 59.96 s reads `1 min 0 s`, never `60.0 s`. */
export function formatDuration(us) {
  if (us === null || us === undefined || us < 0) return "";
  if (Math.round(us) < 1000) return `${Math.round(us)} µs`;
  const ms = us / 1000;
  if (+ms.toFixed(ms < 10 ? 2 : 1) < 1000) return `${ms.toFixed(ms < 10 ? 2 : 1)} ms`;
  const seconds = us / 1_000_000;
  if (+seconds.toFixed(seconds < 10 ? 2 : 1) < 60) return `${seconds.toFixed(seconds < 10 ? 2 : 1)} s`;
  const wholeSeconds = Math.round(seconds);
  const minutes = Math.floor(wholeSeconds / 60);
  if (minutes < 60) return `${minutes} min ${wholeSeconds % 60} s`;
  const wholeMinutes = Math.round(seconds / 60);
  return `${Math.floor(wholeMinutes / 60)} h ${wholeMinutes % 60} min`;
}

/** An offset on a ruler: as short as it can be, `0`, `250 µs`, `40 ms`, `1.5 s`. */
export function formatOffset(us) {
  if (us === 0) return "0";
  if (Math.round(us) < 1000) return `${Math.round(us)} µs`;
  if (+(us / 1000).toFixed(2) < 1000) return `${+(us / 1000).toFixed(2)} ms`;
  if (+(us / 1_000_000).toFixed(2) < 60) return `${+(us / 1_000_000).toFixed(2)} s`;
  return `${+(us / 60_000_000).toFixed(1)} min`;
}

/** How long ago `thenMs` was at `nowMs`: `just now`, `42 s ago`, `3 min ago`, `5 h ago`, `2 days ago`. */
export function relativeTime(thenMs, nowMs) {
  const seconds = Math.round((nowMs - thenMs) / 1000);
  if (seconds < 0) return "in the future";
  if (seconds < 5) return "just now";
  if (seconds < 60) return `${seconds} s ago`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min ago`;
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return `${hours} h ago`;
  return `${Math.floor(hours / 24)} days ago`;
}

/** A moment as a date and a time to the second, in the reader's zone: `2026-11-26 04:31:02`. */
export function formatDate(ms) {
  const d = new Date(ms);
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/**
 * Ticks for a ruler over `lengthUs`: a round step (1, 2 or 5 times a power
 * of ten) giving at most `most` intervals; `[{at, label}]` with `at` as a
 * fraction of the length, starting at 0.
 */
export function rulerTicks(lengthUs, most = 5) {
  if (!(lengthUs > 0) || !Number.isFinite(lengthUs)) return [{ at: 0, label: "0" }];
  const rough = lengthUs / most;
  const power = 10 ** Math.floor(Math.log10(rough));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= rough);
  const ticks = [];
  for (let t = 0; t <= lengthUs + step * 1e-9; t += step) ticks.push({ at: t / lengthUs, label: formatOffset(t) });
  return ticks;
}
