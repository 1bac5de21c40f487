"""The host functions, in one place: every door out of the sandbox.

Everything else in the SDK calls these; nothing else touches `wit_world`.
Every string passed to the host goes through `text` first.
"""

import codecs
import json

from componentize_py_types import Err
from wit_world.imports import host


# One encoder for every call: `json.dumps` with any option builds a new one
# each time, which was a large part of a step's cost.
_encode = json.JSONEncoder(default=repr, ensure_ascii=False).encode


def text(value):
    """`value`, a str, as one that can cross to the host.

    WIT strings are UTF-8, and a Python str may hold a lone surrogate
    ("\\ud800"), which has no UTF-8 form: passed as it is, it traps the
    instance. Each lone surrogate becomes U+FFFD; a high and a low surrogate
    side by side become the character they encode, as in UTF-16. The SDK's
    JSON (`ensure_ascii=False`) leaves a lone surrogate raw, so it is
    replaced here too, never escaped as "\\ud800", an escape the host's JSON
    parser refuses.
    """
    # str's own methods: a str subclass cannot answer for itself.
    if str.isascii(value):
        return value
    try:
        str.encode(value, "utf-8")
    except UnicodeEncodeError:
        units = codecs.utf_16_le_encode(value, "surrogatepass")[0]
        return codecs.utf_16_le_decode(units, "replace", True)[0]
    return value


def to_json(value):
    """JSON for values crossing to the host; what JSON cannot say becomes its repr."""
    return text(_encode(value))


def span_start(kind, name, attrs, line):
    # Most steps carry no attributes; "{}" needs no encoder.
    return host.span_start(kind, text(name), to_json(attrs) if attrs else "{}", line)


def span_end(span_id, status, attrs, error):
    host.span_end(span_id, status, to_json(attrs) if attrs else "{}", None if error is None else to_json(error))


def log(channel, message):
    host.log(channel, text(message))


def rpc_call(service, method, params, line):
    """Returns `(ok, value)`: the decoded result, or the host's `CallError` case."""
    try:
        return True, json.loads(host.rpc_call(text(service), text(method), to_json(params), line))
    except Err as err:
        return False, err.value


def rpc_gather(calls):
    """`calls` is a list of (service, method, params, line); returns a list of
    `(ok, value)` in the same order."""
    requests = [
        host.RpcRequest(text(service), text(method), to_json(params), line) for service, method, params, line in calls
    ]
    answers = []
    for answer in host.rpc_gather(requests):
        if isinstance(answer, Err):
            answers.append((False, answer.value))
        else:
            answers.append((True, json.loads(answer.value)))
    return answers


def invoke(flow_name, inputs, line):
    """Returns `(ok, value)`: the subflow's output, or its error object."""
    try:
        return True, json.loads(host.invoke(text(flow_name), to_json(inputs), line))
    except Err as err:
        return False, json.loads(err.value)


def invoke_gather(calls, concurrency):
    """`calls` is a list of (flow_name, inputs, line); returns a list of
    `(ok, value, span_id, duration_us)` in the same order."""
    requests = [host.InvokeRequest(text(name), to_json(inputs), line) for name, inputs, line in calls]
    answers = []
    for answer in host.invoke_gather(requests, concurrency):
        ok = not isinstance(answer.outcome, Err)
        answers.append((ok, json.loads(answer.outcome.value), answer.span_id, answer.duration_us))
    return answers
