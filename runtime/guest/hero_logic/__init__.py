"""hero_logic: write a flow as a Python function; the host records every step.

    from hero_logic import flow, services

    @flow(name="greet", inputs={"who": "string"}, description="Say hello.")
    def greet(who):
        with flow.step("build", who=who) as s:
            text = f"hello {who}"
            s.set(length=len(text))
        return {"greeting": text}

- `@flow(...)` declares a flow; `flow.step(name, **attrs)` opens a step span.
- `flow.log(...)`, `print()` and stderr become log lines on the current span.
- `raise flow.Failed("reason")` ends the flow as failed, without a traceback.
- `flow.invoke("other", **inputs)` runs another flow as a subflow;
  `flow.invoke_many([(name, inputs), ...], concurrency=4)` runs several side by side.
- `services.<service>.<method>(**params)` calls a registered JSON-RPC service.
"""

from ._flow import flow
from ._services import services
from ._stdlib import STDLIB_MODULES

__all__ = ["flow", "services", "STDLIB_MODULES"]
