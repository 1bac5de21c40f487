// A run's attempts together in a list of runs. A flow declared with
// `@flow(retries=N)` runs again as new runs, each with `attempt` (1-based)
// and `first_run_id`. The list shows each run's latest attempt where the
// newest of its attempts falls, and the earlier attempts right under it,
// so a run that failed twice and then passed reads as one line with its
// history below.

/**
 * `runs` newest first, as `GET /api/runs` lists them, into rows:
 * `{ run, earlier, attempts }` where `earlier` is true for an attempt shown
 * under a later one of the same run, and `attempts` is how many of the
 * run's attempts the list holds. Runs without attempts keep their place.
 */
export function groupAttempts(runs) {
  const groups = new Map();
  for (const run of runs) {
    const key = run.first_run_id || run.run_id;
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key).push(run);
  }
  const rows = [];
  for (const attempts of groups.values()) {
    attempts.sort((a, b) => (b.attempt ?? 1) - (a.attempt ?? 1));
    attempts.forEach((run, index) => rows.push({ run, earlier: index > 0, attempts: attempts.length }));
  }
  return rows;
}

/** Whether a run is one of several attempts (so its attempts are worth a link). */
export function isRetried(run) {
  return (run.attempt ?? 1) > 1 || Boolean(run.retry_due_us);
}
