"""`flow`: the decorator that declares a flow, and the namespace a flow uses.

    @flow(name="greet", inputs={"who": "string"}, description="Say hello.")
    def greet(who):
        with flow.step("build", who=who) as s:
            s.set(length=3)
        flow.log("done")
"""

import sys

from . import _errors, _host, _streams

#: Input types a flow may declare, as JSON Schema type names.
INPUT_TYPES = ("string", "integer", "number", "boolean", "object", "array", "any")

_PYTHON_TYPES = {
    str: "string",
    int: "integer",
    float: "number",
    bool: "boolean",
    dict: "object",
    list: "array",
}

#: Flows declared by the module being described or run, in declaration order.
registry = []

#: The steps this instance has open, innermost last: the host's stack of this
#: instance's steps, mirrored. The host lets a flow close only its innermost
#: step, so a step that ends with steps still open inside it (their own exit
#: never ran, or failed) closes those first, rather than being refused.
_open_steps = []

#: Python frames a step may use beyond the recursion limit to open or close
#: its span. A step entered or left at the limit (deep recursion through
#: steps) must still reach the host: a span opened there that the SDK never
#: learnt of, or one left unclosed, would break the span protocol and hide the
#: RecursionError that is the real failure. Building the error object
#: (traceback) and the host call need a few tens of frames.
_HEADROOM = 50

# Looked up once: a step reads and sets the limit four times.
_get_recursion_limit = sys.getrecursionlimit
_set_recursion_limit = sys.setrecursionlimit


class Failed(Exception):
    """Raise `flow.Failed("reason")` to end the flow as failed with that reason.

    Unlike any other exception, it carries no traceback: the reason is the message.
    """

    _hero_logic_no_traceback = True

    def __init__(self, reason):
        super().__init__(reason)
        self.reason = reason


class SubflowFailed(Exception):
    """A flow started with `flow.invoke` failed; `.error` is the callee's error object
    (`type`, `message`, `traceback`, `line`), `.flow` the callee's name."""

    def __init__(self, flow_name, error):
        self.flow = flow_name
        self.error = error
        super().__init__(f"subflow {flow_name!r} failed: {error.get('type')}: {error.get('message')}")

    def _hero_logic_error_fields(self):
        return {"subflow": self.flow, "cause": self.error}


class Subflow:
    """How one subflow of `flow.invoke_many` ended.

    `.ok`, `.output` (None unless ok), `.error` (the exception `flow.invoke`
    would have raised, or None), `.duration_ms`, `.span_id` (None when the
    flow was unknown or the input refused, so nothing ran), `.flow`, `.inputs`.
    `.result()` is the output, or raises `.error`.
    """

    __slots__ = ("flow", "inputs", "ok", "output", "error", "duration_ms", "span_id")

    def __init__(self, flow_name, inputs, ok, value, span_id, duration_us):
        self.flow = flow_name
        self.inputs = inputs
        self.ok = ok
        self.output = value if ok else None
        self.error = None if ok else _invoke_error(flow_name, value)
        self.duration_ms = duration_us / 1000
        self.span_id = span_id

    def result(self):
        if self.error is not None:
            raise self.error
        return self.output

    def __repr__(self):
        state = "ok" if self.ok else type(self.error).__name__
        return f"<subflow {self.flow} {state} {self.duration_ms:.1f} ms>"


def _invoke_error(flow_name, error):
    """The exception for a subflow's error object: a refusal before it ran
    (unknown flow, input its declaration refuses) or its failure."""
    if error.get("type") in ("UnknownFlow", "InvalidInput"):
        return LookupError(error.get("message"))
    return SubflowFailed(flow_name, error)


class Step:
    """A step span. Use it as `with flow.step("name", **attrs) as s:`.

    An exception leaving the block marks the span failed, with the exception's
    type, message and traceback, and goes on propagating.
    """

    __slots__ = ("name", "_attrs", "_late_attrs", "_line", "_span_id")

    def __init__(self, name, attrs, line):
        self.name = name
        self._attrs = attrs
        self._late_attrs = {}
        self._line = line
        self._span_id = None

    def set(self, **attrs):
        """Add attributes to the span; they are recorded when the step ends."""
        self._late_attrs.update(attrs)
        return self

    def __enter__(self):
        if self._span_id is not None:
            raise RuntimeError(f"step {self.name!r} was already entered; open a new flow.step")
        # A first call without headroom: if this frame is the last the limit
        # allows, RecursionError is raised here, before anything is opened,
        # and restoring the limit below (from this frame, not a helper's: a
        # limit equal to the depth of the frame setting it is refused) cannot
        # be refused.
        _streams.flush_all()
        limit = _get_recursion_limit()
        _set_recursion_limit(limit + _HEADROOM)
        try:
            self._span_id = _host.span_start("step", self.name, self._attrs, self._line)
            _open_steps.append(self)
        finally:
            _set_recursion_limit(limit)
        return self

    def __exit__(self, exc_type, exc, tb):
        limit = _get_recursion_limit()
        _set_recursion_limit(limit + _HEADROOM)
        try:
            _close(self, exc)
        finally:
            try:
                _set_recursion_limit(limit)
            except RecursionError:
                # Only when the flow itself lowered the limit to this frame's
                # depth; the limit then stays a little higher, which is harmless.
                pass
        return False


def _close(step, exc):
    """End `step`'s span, after any of its inner steps still open."""
    if (not _open_steps or _open_steps[-1] is not step) and step not in _open_steps:
        # Already closed, as an inner step left open by an outer one that ended.
        return
    _streams.flush_all()
    error = None if exc is None else _errors.error_of(exc)
    while _open_steps[-1] is not step:
        inner = _open_steps[-1]
        inner_error = error or {
            "type": "SpanLeftOpen",
            "message": f"step {step.name!r} ended before this step inside it was closed",
            "traceback": None,
        }
        _host.span_end(inner._span_id, "failed", inner._late_attrs, inner_error)
        _open_steps.pop()
    if error is None:
        _host.span_end(step._span_id, "ok", step._late_attrs, None)
    else:
        _host.span_end(step._span_id, "failed", step._late_attrs, error)
    _open_steps.pop()


class _FlowSpec:
    """What `@flow` records about a function: the metadata `describe` returns."""

    def __init__(self, func, name, inputs, description, services, retry, concurrency, durable):
        self.func = func
        self.name = name
        self.inputs = inputs
        self.description = description
        self.services = services
        self.retry = retry
        self.concurrency = concurrency
        self.durable = durable
        self.doc = (func.__doc__ or "").strip() or None
        self.line = func.__code__.co_firstlineno

    def to_json(self):
        return {
            "name": self.name,
            "description": self.description,
            "doc": self.doc,
            "inputs": self.inputs,
            "services": self.services,
            "line": self.line,
            "retry": self.retry,
            "concurrency": self.concurrency,
            "durable": self.durable,
        }


def _normalise_input(flow_name, key, spec):
    where = f"flow {flow_name!r}, input {key!r}"
    if isinstance(spec, type) and spec in _PYTHON_TYPES:
        spec = _PYTHON_TYPES[spec]
    if isinstance(spec, str):
        optional = spec.endswith("?")
        spec = {"type": spec.rstrip("?"), "required": not optional}
    if not isinstance(spec, dict):
        raise TypeError(f"{where}: declare a type name such as 'string', or a dict with 'type'")
    unknown = set(spec) - {"type", "required", "default", "description"}
    if unknown:
        raise TypeError(f"{where}: unknown keys {sorted(unknown)}")
    kind = spec.get("type", "any")
    if isinstance(kind, type) and kind in _PYTHON_TYPES:
        kind = _PYTHON_TYPES[kind]
    if kind not in INPUT_TYPES:
        raise TypeError(f"{where}: type {kind!r} is not one of {', '.join(INPUT_TYPES)}")
    has_default = "default" in spec
    return {
        "type": kind,
        "required": bool(spec.get("required", not has_default)),
        "default": spec.get("default"),
        "description": spec.get("description"),
    }


#: How a run may end that a retry is asked for by `retry_on`.
RETRYABLE = ("failed", "timed_out", "quota_exceeded", "cancelled")


def _number(where, value, low, high):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise ValueError(f"{where} must be a number from {low} to {high}, not {value!r}")
    return value


def _retry_policy(flow_name, retries, delay, backoff, retry_on):
    """What `retries=`, `retry_delay=`, `retry_backoff=` and `retry_on=`
    declare, as the host keeps it; None when the flow is not retried."""
    where = f"flow {flow_name!r}:"
    if isinstance(retries, bool) or not isinstance(retries, int) or not 0 <= retries <= 100:
        raise ValueError(f"{where} retries must be an integer from 0 to 100, not {retries!r}")
    delay = _number(f"{where} retry_delay", delay, 0, 7 * 24 * 3600)
    backoff = _number(f"{where} retry_backoff", backoff, 1, 10)
    on = ["failed"] if retry_on is None else retry_on
    if isinstance(on, str) or not all(status in RETRYABLE for status in on):
        raise ValueError(f"{where} retry_on must be a list of {', '.join(RETRYABLE)}, not {retry_on!r}")
    if retries == 0:
        if retry_on is not None or delay or backoff != 1:
            raise ValueError(f"{where} retry_on, retry_delay and retry_backoff need retries=N")
        return None
    return {"retries": retries, "delay_s": delay, "backoff": backoff, "on": sorted(set(on))}


def _concurrency_limit(flow_name, limit, key, inputs):
    """What `concurrency=` and `concurrency_key=` declare; None without a limit."""
    where = f"flow {flow_name!r}:"
    if limit is None:
        if key is not None:
            raise ValueError(f"{where} concurrency_key needs concurrency=K")
        return None
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 10000:
        raise ValueError(f"{where} concurrency must be an integer from 1 to 10000, not {limit!r}")
    if key is not None and key not in inputs:
        raise ValueError(f"{where} concurrency_key {key!r} is not one of its inputs")
    return {"limit": limit, "key": key}


class _Flow:
    """`flow` is both the decorator that declares a flow and the namespace a flow
    uses while it runs: `flow.step`, `flow.log`, `flow.invoke`, `flow.invoke_many`,
    `flow.Failed`."""

    Failed = Failed
    SubflowFailed = SubflowFailed

    def __call__(
        self,
        name=None,
        *,
        inputs=None,
        description=None,
        services=None,
        retries=0,
        retry_delay=0,
        retry_backoff=1,
        retry_on=None,
        concurrency=None,
        concurrency_key=None,
        durable=False,
    ):
        """Declare a flow.

        name: the flow's name (default: the function's name).
        inputs: `{"arg": "string" | "integer" | "number" | "boolean" | "object" |
            "array" | "any"}`; a trailing `?` makes an input optional, and a dict
            `{"type", "required", "default", "description"}` says more. The host
            checks a run's input against these before the run starts.
        description: one line for the library (default: the docstring's first line).
        services: the registered services this flow may call; any other is refused.
        retries: run a run that ends `failed` again, as a new run, up to this many
            more times; `retry_delay` seconds after it ended, the delay multiplied
            by `retry_backoff` after each attempt. `retry_on` lists the endings
            retried (default `["failed"]`; also `timed_out`, `quota_exceeded`,
            `cancelled`).
        concurrency: at most this many runs of the flow at once, on all nodes;
            the others wait `queued`. `concurrency_key="field"` counts the runs
            of each value of that input apart.
        durable: when the server dies with a run of the flow going on, the run
            is resumed at the next start (or by another node) instead of ending
            `interrupted`: run again from the start with every answer it was
            given already taken from its journal, then live. A service call
            answered before the crash is not made again; each carries an
            `Idempotency-Key` header so a service can recognise the one that
            may have been in flight.
        """
        if callable(name):
            return self()(name)

        def declare(func):
            flow_name = name or func.__name__
            if not isinstance(flow_name, str) or not flow_name.isidentifier():
                raise ValueError(f"flow name {flow_name!r} must be a Python identifier")
            declared = {k: _normalise_input(flow_name, k, v) for k, v in (inputs or {}).items()}
            summary = description
            if summary is None and func.__doc__:
                summary = func.__doc__.strip().splitlines()[0]
            allowed = list(services or [])
            if any(not isinstance(s, str) for s in allowed):
                raise TypeError(f"flow {flow_name!r}: services must be a list of service names")
            if any(spec.name == flow_name for spec in registry):
                raise ValueError(f"flow {flow_name!r} is declared twice in this module")
            retry = _retry_policy(flow_name, retries, retry_delay, retry_backoff, retry_on)
            limit = _concurrency_limit(flow_name, concurrency, concurrency_key, declared)
            if not isinstance(durable, bool):
                raise ValueError(f"flow {flow_name!r}: durable must be True or False, not {durable!r}")
            registry.append(_FlowSpec(func, flow_name, declared, summary, allowed, retry, limit, durable))
            func.__hero_logic_flow__ = flow_name
            return func

        return declare

    def step(self, name, **attrs):
        """Open a step span: `with flow.step("name", key=value) as s: ...`.

        Keyword arguments become the span's attributes; `s.set(**attrs)` adds more.
        """
        return Step(str(name), attrs, _errors.caller_line())

    def log(self, *parts, sep=" "):
        """Write a log line on the current span (like `print`, on the `log` channel)."""
        _streams.flush_all()
        _host.log("log", sep.join(str(p) for p in parts))

    def invoke(self, flow_name, **inputs):
        """Run another flow as a subflow of this run and return its output.

        The subflow runs in a fresh sandbox; its spans nest under a `subflow`
        span, and it is charged to this run's quotas. If it fails, this raises
        `flow.SubflowFailed` carrying the callee's error.
        """
        _streams.flush_all()
        ok, value = _host.invoke(flow_name, inputs, _errors.caller_line())
        if ok:
            return value
        raise _invoke_error(flow_name, value)

    def invoke_many(self, calls, concurrency=4):
        """Run several subflows side by side and return a `Subflow` for each, in order.

            results = flow.invoke_many([("greet", {"who": "Ada"}), ("greet", {"who": "Alan"})])
            outputs = [r.result() for r in results]

        `calls` is a list of `(flow_name, inputs)` pairs. At most `concurrency`
        run at once (the host caps it at 16; the run's memory quota is shared by
        all). Each gets its own `subflow` span beside the others. A subflow that
        fails does not stop the rest: look at `.ok` / `.error`, or call `.result()`.
        """
        line = _errors.caller_line()
        pending = []
        for call in calls:
            if not (isinstance(call, (tuple, list)) and len(call) == 2 and isinstance(call[0], str) and isinstance(call[1], dict)):
                raise TypeError("flow.invoke_many takes (flow_name, inputs) pairs, with inputs a dict")
            pending.append((call[0], call[1], line))
        if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
            raise ValueError("concurrency must be a positive integer")
        _streams.flush_all()
        answers = _host.invoke_gather(pending, min(concurrency, 2**32 - 1))
        return [Subflow(name, inputs, *answer) for (name, inputs, _), answer in zip(pending, answers)]


flow = _Flow()
