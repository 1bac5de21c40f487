"""Built-in: which version of a flow is best?"""

import time

from hero_logic import flow, services

# This flow's input is called `flow`; inside it the SDK goes by this name.
flow_api = flow


@flow(
    name="pick_version_flow",
    inputs={
        "flow": "string",
        "samples": {"type": "array", "description": "Inputs to run every version on; an item may be {\"input\": ..., \"expected\": ...}."},
        "versions": {"type": "array", "required": False, "description": "Which versions (default: all)."},
    },
    description="Run the versions of a flow over the same sample inputs and pick the best: correctness first (runs that succeed and match what is expected), then speed.",
    services=["flows"],
)
def pick_version_flow(flow, samples, versions):
    """Each version runs every sample as a subflow; its score is on its step."""
    target = flow
    with flow_api.step("versions", flow=target) as s:
        known = [v["version"] for v in services.flows.versions(name=target)]
        if not known:
            raise flow_api.Failed(f"no stored flow named {target!r}")
        chosen = [v for v in known if versions is None or v in versions]
        s.set(versions=chosen)
    cases = [sample if isinstance(sample, dict) and "input" in sample else {"input": sample} for sample in samples]
    scores = []
    for version in chosen:
        with flow_api.step(f"version {version}", version=version) as s:
            correct = 0
            times = []
            errors = []
            for case in cases:
                started = time.perf_counter()
                try:
                    output = flow_api.invoke(f"{target}@{version}", **case["input"])
                    if "expected" not in case or output == case["expected"]:
                        correct += 1
                    else:
                        errors.append(f"expected {case['expected']!r}, got {output!r}")
                except flow_api.SubflowFailed as failed:
                    errors.append(f"{failed.error.get('type')}: {failed.error.get('message')}")
                times.append((time.perf_counter() - started) * 1000)
            median = sorted(times)[len(times) // 2] if times else 0.0
            score = {"version": version, "correct": correct, "of": len(cases), "median_ms": round(median, 3), "errors": errors[:5]}
            s.set(correct=correct, of=len(cases), median_ms=score["median_ms"])
            scores.append(score)
    with flow_api.step("pick", rule="most correct, then fastest median") as s:
        best = sorted(scores, key=lambda sc: (-sc["correct"], sc["median_ms"]))[0]
        s.set(best=best["version"])
    return {"flow": target, "best": best["version"], "rule": "correctness first, then speed", "scores": scores}
