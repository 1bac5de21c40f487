"""Built-in: where does a flow's time go?"""

from hero_logic import flow, services

# This flow's input is called `flow`; inside it the SDK goes by this name.
flow_api = flow


@flow(
    name="optimize_flow",
    inputs={"flow": "string", "runs": {"type": "integer", "required": False, "default": 20, "description": "How many recent runs to read."}},
    description="Find the slowest steps of a flow's recent runs from their spans, report where the time goes, and suggest what to change.",
    services=["runs"],
)
def optimize_flow(flow, runs):
    """Reads the spans of recent finished runs, whether the flow ran on its
    own or as a subflow of another run (as `benchmark_flow` runs it): total
    time per step name, the share of service calls, sequential calls that
    could be gathered."""
    target = flow
    with flow_api.step("recent runs", flow=target, limit=runs) as s:
        alone = [{"run_id": r["run_id"], "root": None, "end_us": r["end_us"]} for r in services.runs.recent(flow=target, limit=runs) if r["end_us"]]
        nested = [{"run_id": r["run_id"], "root": r["span_id"], "end_us": r["end_us"]} for r in services.runs.subflows(flow=target, limit=runs)]
        recent = sorted(alone + nested, key=lambda r: r["end_us"], reverse=True)[:runs]
        s.set(found=len(recent), as_subflow=sum(1 for r in recent if r["root"] is not None))
    if not recent:
        raise flow_api.Failed(f"flow {target!r} has no finished runs to learn from")
    steps = {}
    rpc_total = 0
    run_total = 0
    sequential = {}
    # One read and one index per run, however many of its subflows were the flow.
    index_of_run = {}
    with flow_api.step("read spans") as s:
        for run in recent:
            if run["run_id"] not in index_of_run:
                index_of_run[run["run_id"]] = SpanIndex(services.runs.spans(run_id=run["run_id"]))
            index = index_of_run[run["run_id"]]
            root, inside = index.subtree(run["root"])
            run_total += duration_of(root)
            for span in inside:
                duration = duration_of(span)
                if span["kind"] == "step":
                    entry = steps.setdefault(span["name"], {"step": span["name"], "total_us": 0, "count": 0, "failed": 0, "line": span["line"]})
                    entry["total_us"] += duration
                    entry["count"] += 1
                    entry["failed"] += span["status"] != "ok"
                elif span["kind"] == "rpc":
                    rpc_total += duration
                    parent = index.by_id.get(span["parent_id"], root)
                    key = (parent.get("name"), span["name"])
                    sequential[key] = sequential.get(key, 0) + 1
        s.set(spans_read=sum(e["count"] for e in steps.values()))
    with flow_api.step("rank") as s:
        ranked = sorted(steps.values(), key=lambda e: e["total_us"], reverse=True)
        for entry in ranked:
            entry["mean_ms"] = round(entry["total_us"] / entry["count"] / 1000, 3)
            entry["share"] = round(entry["total_us"] / run_total, 3) if run_total else 0
        s.set(slowest=[e["step"] for e in ranked[:3]])
    with flow_api.step("suggest") as s:
        suggestions = []
        if ranked and ranked[0]["share"] > 0.5:
            top = ranked[0]
            suggestions.append(f"step {top['step']!r} (line {top['line']}) takes {top['share']:.0%} of the run time: start there")
        if run_total and rpc_total / run_total > 0.5:
            suggestions.append(f"service calls take {rpc_total / run_total:.0%} of the run time")
        for (step, call), count in sorted(sequential.items(), key=lambda item: -item[1]):
            per_run = count / len(recent)
            if per_run >= 2:
                suggestions.append(f"{per_run:.0f} calls to {call} in step {step!r} per run: make them at once with services.gather")
        for entry in ranked:
            if entry["failed"]:
                suggestions.append(f"step {entry['step']!r} failed in {entry['failed']} of {entry['count']} runs")
        s.set(suggestions=len(suggestions))
    return {
        "flow": target,
        "runs": len(recent),
        "mean_run_ms": round(run_total / len(recent) / 1000, 3),
        "rpc_share": round(rpc_total / run_total, 3) if run_total else 0,
        "steps": ranked,
        "suggestions": suggestions,
    }



def duration_of(span):
    return (span["end_us"] or span["start_us"]) - span["start_us"]


class SpanIndex:
    """A run's spans by id and by parent."""

    def __init__(self, spans):
        self.by_id = {span["span_id"]: span for span in spans}
        self.children = {}
        for span in spans:
            self.children.setdefault(span["parent_id"], []).append(span)

    def subtree(self, root_id):
        """The span `root_id` (None: the run's root span) and the spans under it."""
        root = self.by_id[root_id] if root_id is not None else self.children[None][0]
        inside = []
        waiting = list(self.children.get(root["span_id"], []))
        while waiting:
            span = waiting.pop()
            inside.append(span)
            waiting.extend(self.children.get(span["span_id"], []))
        inside.sort(key=lambda span: span["span_id"])
        return root, inside
