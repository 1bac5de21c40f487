"""Built-in: run a flow many times and report how fast and how reliably."""

import time

from hero_logic import flow, services

# This flow's input is called `flow`; inside it the SDK goes by this name.
flow_api = flow

#: A sample value for each declared input type.
SAMPLES = {"string": "sample", "integer": 3, "number": 1.5, "boolean": True, "object": {}, "array": [], "any": None}


@flow(
    name="benchmark_flow",
    inputs={
        "flow": "string",
        "runs": {"type": "integer", "required": False, "default": 10, "description": "How many runs (1 to 200)."},
        "concurrency": {"type": "integer", "required": False, "default": 1, "description": "Runs at once (1 to 16); each takes a share of this run's memory quota."},
        "input": {"type": "object", "required": False, "description": "The input for every run (default: generated from the declared inputs)."},
    },
    description="Run a named flow N times with inputs generated from its declared inputs and report p50/p95/max duration and failures; results kept in kv.",
    services=["flows", "kv"],
)
def benchmark_flow(flow, runs, concurrency, input):
    """Runs are subflows, `concurrency` at a time (one by default, so each is
    measured alone). Side by side they overlap their waiting (service calls,
    sleeps), not their computing: a run's subflows share one thread."""
    target = flow
    if not 1 <= runs <= 200:
        raise flow_api.Failed("runs must be between 1 and 200")
    if not 1 <= concurrency <= 16:
        raise flow_api.Failed("concurrency must be between 1 and 16")
    with flow_api.step("inputs", flow=target) as s:
        stored = services.flows.get(name=target)
        if stored is None:
            raise flow_api.Failed(f"no stored flow named {target!r}")
        sample = input if input is not None else generate_input(stored["info"]["inputs"])
        s.set(version=stored["version"], input=sample)
    with flow_api.step("runs", count=runs, concurrency=concurrency) as s:
        started = time.perf_counter()
        results = flow_api.invoke_many([(target, sample)] * runs, concurrency=concurrency)
        elapsed_s = time.perf_counter() - started
        durations = [r.duration_ms for r in results]
        failures = [dict(run=i, **describe_failure(r.error)) for i, r in enumerate(results) if not r.ok]
        s.set(failures=len(failures), elapsed_ms=round(elapsed_s * 1000, 3))
    with flow_api.step("report") as s:
        ordered = sorted(durations)
        result = {
            "flow": target,
            "version": stored["version"],
            "runs": runs,
            "concurrency": concurrency,
            "failures": len(failures),
            "runs_per_second": round(runs / elapsed_s, 2) if elapsed_s > 0 else None,
            "p50_ms": round(percentile(ordered, 50), 3),
            "p95_ms": round(percentile(ordered, 95), 3),
            "max_ms": round(ordered[-1], 3),
            "failed_runs": failures[:10],
        }
        services.kv.set(key=f"benchmark:{target}", value=result)
        s.set(p50_ms=result["p50_ms"], p95_ms=result["p95_ms"])
    return result


def generate_input(declared):
    """An input for every required parameter, from its declared type."""
    return {name: spec["default"] if spec.get("default") is not None else SAMPLES.get(spec["type"]) for name, spec in declared.items() if spec["required"] or spec.get("default") is not None}


def describe_failure(error):
    """`type` and `message` of a failed run: the callee's own error when it
    ran (`SubflowFailed.error`), else why it was refused."""
    cause = getattr(error, "error", None)
    if isinstance(cause, dict):
        return {"type": cause.get("type"), "message": cause.get("message")}
    return {"type": type(error).__name__, "message": str(error)}


def percentile(ordered, p):
    rank = max(1, -(-len(ordered) * p // 100))
    return ordered[int(rank) - 1]
