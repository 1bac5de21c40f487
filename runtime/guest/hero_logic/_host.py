"""The host functions, in one place: every door out of the sandbox.

Everything else in the SDK calls these; nothing else touches `wit_world`.
"""

import json

from componentize_py_types import Err
from wit_world.imports import host


# One encoder for every call: `json.dumps` with any option builds a new one
# each time, which was a large part of a step's cost.
_encode = json.JSONEncoder(default=repr, ensure_ascii=False).encode


def to_json(value):
    """JSON for values crossing to the host; what JSON cannot say becomes its repr."""
    return _encode(value)


def span_start(kind, name, attrs, line):
    # Most steps carry no attributes; "{}" needs no encoder.
    return host.span_start(kind, name, _encode(attrs) if attrs else "{}", line)


def span_end(span_id, status, attrs, error):
    host.span_end(span_id, status, _encode(attrs) if attrs else "{}", None if error is None else _encode(error))


def log(channel, message):
    host.log(channel, message)


def rpc_call(service, method, params, line):
    """Returns `(ok, value)`: the decoded result, or the decoded error object."""
    try:
        return True, json.loads(host.rpc_call(service, method, to_json(params), line))
    except Err as err:
        return False, json.loads(err.value)


def rpc_gather(calls):
    """`calls` is a list of (service, method, params, line); returns a list of
    `(ok, value)` in the same order."""
    requests = [host.RpcRequest(service, method, to_json(params), line) for service, method, params, line in calls]
    answers = []
    for answer in host.rpc_gather(requests):
        if isinstance(answer, Err):
            answers.append((False, json.loads(answer.value)))
        else:
            answers.append((True, json.loads(answer.value)))
    return answers


def invoke(flow_name, inputs, line):
    """Returns `(ok, value)`: the subflow's output, or its error object."""
    try:
        return True, json.loads(host.invoke(flow_name, to_json(inputs), line))
    except Err as err:
        return False, json.loads(err.value)


def invoke_gather(calls, concurrency):
    """`calls` is a list of (flow_name, inputs, line); returns a list of
    `(ok, value, span_id, duration_us)` in the same order."""
    requests = [host.InvokeRequest(name, to_json(inputs), line) for name, inputs, line in calls]
    answers = []
    for answer in host.invoke_gather(requests, concurrency):
        ok = not isinstance(answer.outcome, Err)
        answers.append((ok, json.loads(answer.outcome.value), answer.span_id, answer.duration_us))
    return answers
