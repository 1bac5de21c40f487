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
        "input": {"type": "object", "required": False, "description": "The input for every run (default: generated from the declared inputs)."},
    },
    description="Run a named flow N times with inputs generated from its declared inputs and report p50/p95/max duration and failures; results kept in kv.",
    services=["flows", "kv"],
)
def benchmark_flow(flow, runs, input):
    """Runs are subflows, one at a time, so each is measured alone."""
    target = flow
    if not 1 <= runs <= 200:
        raise flow_api.Failed("runs must be between 1 and 200")
    with flow_api.step("inputs", flow=target) as s:
        stored = services.flows.get(name=target)
        if stored is None:
            raise flow_api.Failed(f"no stored flow named {target!r}")
        sample = input if input is not None else generate_input(stored["info"]["inputs"])
        s.set(version=stored["version"], input=sample)
    durations = []
    failures = []
    with flow_api.step("runs", count=runs) as s:
        for i in range(runs):
            started = time.perf_counter()
            try:
                flow_api.invoke(target, **sample)
            except flow_api.SubflowFailed as failed:
                failures.append({"run": i, "type": failed.error.get("type"), "message": failed.error.get("message")})
            durations.append((time.perf_counter() - started) * 1000)
        s.set(failures=len(failures))
    with flow_api.step("report") as s:
        ordered = sorted(durations)
        result = {
            "flow": target,
            "version": stored["version"],
            "runs": runs,
            "failures": len(failures),
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


def percentile(ordered, p):
    rank = max(1, -(-len(ordered) * p // 100))
    return ordered[int(rank) - 1]
