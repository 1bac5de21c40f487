#!/usr/bin/env python3
"""A JSON-RPC 2.0 ledger that applies each call once, by its Idempotency-Key: how a service makes even a call repeated after a crash exactly-once.

    python3 examples/services/ledger.py --port 0

hero_logic sends every service call with `Idempotency-Key: <run>/<instance>/<index>`,
the same when a durable run is resumed after a crash. This service adds an
amount to a total once per key, and answers a key it has seen with the
answer it gave then. Methods: add(amount) -> {"total", "repeated"};
calls() -> {"by_key": {key: times it was received}, "total"}.
"""

import sys
import threading

from jsonrpc_server import RpcError, arguments, request_headers, serve

DOCUMENT = {
    "openrpc": "1.2.6",
    "info": {"title": "ledger", "version": "1.0.0", "description": "Adds amounts once per Idempotency-Key."},
    "methods": [
        {
            "name": "add",
            "params": [{"name": "amount", "required": True, "schema": {"type": "integer"}}],
            "result": {"name": "entry", "schema": {"type": "object"}},
        },
        {"name": "calls", "params": [], "result": {"name": "calls", "schema": {"type": "object"}}},
    ],
}

_lock = threading.Lock()
_total = 0
_answers = {}
_received = {}


def _key():
    headers = {name.lower(): value for name, value in request_headers().items()}
    key = headers.get("idempotency-key")
    if not key:
        raise RpcError(-32602, "an Idempotency-Key header is required")
    return key


def add(amount):
    global _total
    key = _key()
    with _lock:
        _received[key] = _received.get(key, 0) + 1
        if key in _answers:
            return {**_answers[key], "repeated": True}
        _total += amount
        _answers[key] = {"total": _total, "repeated": False}
        return _answers[key]


def calls():
    with _lock:
        return {"by_key": dict(_received), "total": _total}


def main():
    args = arguments(__doc__.splitlines()[0], default_port=8767).parse_args()
    return serve({"add": add, "calls": calls}, DOCUMENT, args)


if __name__ == "__main__":
    sys.exit(main())
