"""Built-in: do what a request asks, reusing the library before writing code."""

import re

from hero_logic import flow, services

#: A library hit at least this relevant is run instead of writing new code.
MATCH_SCORE = 1.0


@flow(
    name="service_agent",
    inputs={
        "request": {"type": "string", "description": "What to do, in plain words."},
        "max_attempts": {"type": "integer", "required": False, "default": 3, "description": "How often to write code and retry."},
    },
    description="Given a request in plain words, search the flow library first and run the best match; otherwise have service_code_gen write a flow, run it in the sandbox, feed errors back and retry, then summarise.",
    # It runs the flows it finds or has written, whatever services they call.
    services=["*"],
)
def service_agent(request, max_attempts):
    with flow.step("search library", query=request) as s:
        hits = [h for h in services.library.search(query=request, limit=5) if h["name"] not in BUILT_INS]
        match = _usable(hits, request)
        s.set(
            candidates=[{"name": h["name"], "score": round(h["score"], 3)} for h in hits],
            chosen=match and match[0],
            threshold=MATCH_SCORE,
        )
    attempts = []
    if match is not None:
        name, inputs = match
        with flow.step("run match", flow=name, input=inputs):
            output = flow.invoke(name, **inputs)
        outcome = {"source": "library", "flow": name, "input": inputs, "output": output}
    else:
        outcome = None
        feedback = None
        for attempt in range(1, max_attempts + 1):
            with flow.step("write flow", attempt=attempt) as s:
                try:
                    written = flow.invoke("service_code_gen", request=request, feedback=feedback)
                except flow.SubflowFailed as failed:
                    attempts.append({"attempt": attempt, "stage": "write", "error": failed.error.get("message")})
                    s.set(error=failed.error.get("message"))
                    break
                saved = services.flows.save(source=written["source"])
                name = saved[0]["name"]
                s.set(flow=name, version=saved[0]["version"])
            with flow.step("run written flow", flow=name, attempt=attempt) as s:
                stored = services.flows.get(name=name)
                inputs = _inputs_from_request(request, stored["info"]["inputs"])
                s.set(input=inputs)
                try:
                    output = flow.invoke(name, **inputs)
                    outcome = {"source": "written", "flow": name, "input": inputs, "output": output}
                    attempts.append({"attempt": attempt, "stage": "run", "ok": True})
                    break
                except (flow.SubflowFailed, LookupError) as failed:
                    error = failed.error if isinstance(failed, flow.SubflowFailed) else {"type": "InvalidInput", "message": str(failed)}
                    feedback = f"{error.get('type')}: {error.get('message')}"
                    attempts.append({"attempt": attempt, "stage": "run", "error": feedback})
                    s.set(error=feedback)
    with flow.step("summary") as s:
        if outcome is None:
            s.set(result="nothing worked", attempts=len(attempts))
            raise flow.Failed(f"no stored flow matched and no written flow worked after {len(attempts)} attempts")
        s.set(result=f"ran {outcome['flow']} from the {outcome['source']}", attempts=len(attempts))
    outcome["attempts"] = attempts
    outcome["candidates"] = [h["name"] for h in hits]
    return outcome


BUILT_INS = {"service_agent", "service_code_gen", "benchmark_flow", "pick_version_flow", "optimize_flow", "service_check"}


def _usable(hits, request):
    """The best hit that scores well enough and whose inputs the request fills."""
    for hit in hits:
        if hit["score"] < MATCH_SCORE:
            break
        stored = services.flows.get(name=hit["name"])
        inputs = _inputs_from_request(request, stored["info"]["inputs"])
        if all(name in inputs for name, spec in stored["info"]["inputs"].items() if spec["required"]):
            return hit["name"], inputs
    return None


def _inputs_from_request(request, declared):
    """Fill declared inputs from the request: quoted text or capitalised words
    for strings, numbers for integers and numbers."""
    quoted = re.findall(r'"([^"]+)"', request)
    capitalised = [w for w in re.findall(r"\b[A-Z][a-zA-Z]+\b", request) if w.lower() not in {"a", "the", "what", "how", "get", "give", "show", "tell"}]
    numbers = re.findall(r"\b\d+(?:\.\d+)?\b", request)
    strings = quoted + capitalised
    inputs = {}
    for name, spec in declared.items():
        kind = spec["type"]
        if kind == "string" and strings:
            inputs[name] = strings.pop(0)
        elif kind == "integer" and numbers:
            inputs[name] = int(float(numbers.pop(0)))
        elif kind == "number" and numbers:
            inputs[name] = float(numbers.pop(0))
    return inputs
