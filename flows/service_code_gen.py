"""Built-in: write a flow for a request, from the services' documents."""

import json
import re

from hero_logic import flow, services

TEMPLATE = '''from hero_logic import flow, services


@flow(name={name!r}, inputs={inputs!r}, description={description!r}, services=[{service!r}])
def {name}({params}):
    with flow.step({step!r}):
        return services.{service}.{method}({arguments})
'''


@flow(
    name="service_code_gen",
    inputs={
        "request": {"type": "string", "description": "What the flow should do, in plain words."},
        "feedback": {"type": "string", "required": False, "description": "Why the previous attempt failed."},
    },
    description="Write flow source for a request from the registered services' OpenRPC documents: through an llm service when one is registered, otherwise from templates built from the method signatures. The code is checked with describe before it is returned.",
    services=["registry", "flows", "llm"],
)
def service_code_gen(request, feedback):
    with flow.step("services") as s:
        available = [svc for svc in services.registry.list() if not svc["builtin"]]
        s.set(services=[svc["name"] for svc in available])
    if not available:
        raise flow.Failed("no services are registered to write a flow for")
    use_llm = any(svc["name"] == "llm" for svc in available)
    with flow.step("write", author="llm" if use_llm else "template") as s:
        if use_llm:
            source = _from_llm(request, feedback, [svc for svc in available if svc["name"] != "llm"])
            method = None
        else:
            service, method, score = _best_method(request, available)
            if score == 0:
                raise flow.Failed(f"no method of {', '.join(svc['name'] for svc in available)} matches the request")
            source = _from_template(request, service, method)
            s.set(service=service["name"], method=method["name"], score=score)
    with flow.step("check") as s:
        checked = services.flows.describe(source=source)
        s.set(valid=checked["valid"])
    if not checked["valid"]:
        raise flow.Failed(f"the written flow is not valid: {checked['error']['message']}")
    return {"source": source, "flow": checked["flows"][0]["name"], "method": method and method["name"]}


def _words(text):
    return {w for w in re.split(r"[^a-z0-9]+", text.lower()) if len(w) > 2}


def _best_method(request, available):
    """The method whose name, summary and parameters share most words with the request."""
    wanted = _words(request)
    best = (None, None, 0)
    for service in available:
        for method in service["doc"]["methods"]:
            text = " ".join([service["name"], method["name"], method.get("summary") or ""] + [p["name"] for p in method["params"]])
            score = len(wanted & _words(text))
            if score > best[2]:
                best = (service, method, score)
    return best


_TYPES = {"string": "string", "integer": "integer", "number": "number", "boolean": "boolean", "object": "object", "array": "array"}


def _from_template(request, service, method):
    name = re.sub(r"[^a-z0-9_]", "_", f"{service['name']}_{method['name']}".lower())
    inputs = {}
    for param in method["params"]:
        kind = _TYPES.get(param["schema"].get("type"), "any")
        inputs[param["name"]] = kind if param["required"] else kind + "?"
    params = ", ".join(p["name"] for p in method["params"])
    arguments = ", ".join(f"{p['name']}={p['name']}" for p in method["params"] if p["required"])
    optional = [p["name"] for p in method["params"] if not p["required"]]
    if optional:
        body_args = arguments + (", " if arguments else "") + "**{k: v for k, v in {" + ", ".join(f"{n!r}: {n}" for n in optional) + "}.items() if v is not None}"
    else:
        body_args = arguments
    return TEMPLATE.format(
        name=name,
        inputs=inputs,
        description=(method.get("summary") or f"Call {service['name']}.{method['name']}")[:200],
        service=service["name"],
        params=params,
        step=f"call {method['name']}",
        method=method["name"],
        arguments=body_args,
    )


def _from_llm(request, feedback, available):
    catalogue = json.dumps([{"service": s["name"], "methods": s["doc"]["methods"]} for s in available])[:12000]
    prompt = (
        "Write one Python module for hero_logic: `from hero_logic import flow, services`, one function decorated with "
        "@flow(name=..., inputs={...}, description=..., services=[...]) using `with flow.step(...)` blocks and "
        "services.<service>.<method>(**params) calls. Answer with the code only.\n"
        f"Services: {catalogue}\nRequest: {request}\n"
        + (f"The previous attempt failed: {feedback}\n" if feedback else "")
    )
    answer = services.llm.complete(prompt=prompt)
    text = answer["text"] if isinstance(answer, dict) else str(answer)
    fenced = re.search(r"```(?:python)?\n(.*?)```", text, re.S)
    return fenced.group(1) if fenced else text
