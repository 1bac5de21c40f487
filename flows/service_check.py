"""Built-in: check that the registered services answer."""

import time

from hero_logic import flow, services

#: Method names that are health checks by convention: they read, never change.
#: A service marks any other such method `"x-safe": true` in its OpenRPC document.
HEALTH_METHODS = ("health", "ping", "status", "version")


@flow(
    name="service_check",
    inputs={"only": {"type": "array", "required": False, "description": "Check only these services (default: every registered one)."}},
    description="Call every registered service's safe methods (discovery, health) and report which answer, how fast, and which fail.",
    services=["*"],
)
def service_check(only):
    """For each registered service: rpc.discover, then every method that is
    safe to call (marked `x-safe` in its document, or named like a health
    check) and takes no required parameters. Built-ins are skipped."""
    with flow.step("list") as s:
        registered = [svc for svc in services.registry.list() if not svc["builtin"]]
        if only is not None:
            registered = [svc for svc in registered if svc["name"] in set(only)]
        s.set(services=[svc["name"] for svc in registered])
    report = []
    for service in registered:
        name = service["name"]
        with flow.step(f"check {name}", service=name, url=service["url"]) as s:
            checks = [_timed(lambda: services.call(name, "rpc.discover"), "rpc.discover")]
            for method in service["doc"]["methods"]:
                required = [p for p in method["params"] if p["required"]]
                safe = method.get("safe") or method["name"] in HEALTH_METHODS
                if safe and not required:
                    checks.append(_timed(lambda m=method["name"]: services.call(name, m), method["name"]))
            healthy = all(c["ok"] for c in checks)
            s.set(healthy=healthy, checks=len(checks))
            report.append({"service": name, "healthy": healthy, "checks": checks})
    with flow.step("summary") as s:
        failing = [r["service"] for r in report if not r["healthy"]]
        s.set(checked=len(report), failing=failing)
    return {"checked": len(report), "healthy": len(report) - len(failing), "failing": failing, "services": report}


def _timed(call, method):
    started = time.perf_counter()
    try:
        call()
        return {"method": method, "ok": True, "ms": round((time.perf_counter() - started) * 1000, 3)}
    except Exception as error:  # a failing service is what this flow reports
        return {"method": method, "ok": False, "ms": round((time.perf_counter() - started) * 1000, 3), "error": f"{type(error).__name__}: {error}"}
