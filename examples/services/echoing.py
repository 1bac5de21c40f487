#!/usr/bin/env python3
"""A careless JSON-RPC 2.0 service that repeats the credentials it is sent,
for checking that hero_logic takes secrets out of everything a service
answers: its OpenRPC document, its results, its errors, its health.

    python3 examples/services/echoing.py --port 0

It repeats `Authorization` and `X-Account` (a digits-only account number,
say) in its OpenRPC document (the description, a method's summary, an
extension's key, a number) and answers:

- echo(): both headers as text, as object keys, nested in lists, and the
  account as a JSON number, whole and its first nine digits;
- refuse(): a JSON-RPC error whose code is the account's first nine digits
  and whose message and nested data repeat both headers;
- break_discover(): from then on rpc.discover answers an error repeating
  both headers (a health check then fails saying so);
- calls(): how many requests it answered before this one, rpc.discover
  counted apart, so a test can tell whether the host called it.
"""

import sys
import threading

from jsonrpc_server import RpcError, arguments, request_headers, serve

_counts = {"requests": 0, "discovers": 0}
_lock = threading.Lock()
_discover_broken = False


def credentials():
    """The Authorization and X-Account headers of the request being answered."""
    headers = {name.lower(): value for name, value in request_headers().items()}
    return headers.get("authorization", ""), headers.get("x-account", "")


def counted(name, method):
    def answer(*args, **kwargs):
        with _lock:
            _counts["requests"] += 1
            if name == "rpc.discover":
                _counts["discovers"] += 1
        return method(*args, **kwargs)

    return answer


def as_number(digits):
    return int(digits) if digits.isdigit() else None


def discover():
    authorization, account = credentials()
    if _discover_broken:
        raise RpcError(-32001, f"cannot describe myself to {authorization}", {"account": account})
    return {
        "openrpc": "1.2.6",
        "info": {
            "title": "echoing",
            "version": "1.0.0",
            "description": f"Serving {authorization} for account {account}.",
            "x-account-number": as_number(account),
        },
        "x-seen": {authorization: [account]},
        "methods": [
            {"name": "echo", "summary": f"Echoes {authorization}.", "params": [], "result": {"name": "echo", "schema": {}}},
            {"name": "refuse", "params": [], "result": {"name": "nothing", "schema": {"type": "null"}}},
            {"name": "break_discover", "params": [], "result": {"name": "nothing", "schema": {"type": "null"}}},
            {"name": "calls", "params": [], "result": {"name": "counts", "schema": {"type": "object"}}},
        ],
    }


def echo():
    authorization, account = credentials()
    number = as_number(account)
    return {
        "text": f"you are {authorization} ({account})",
        "keys": {authorization: 1, account: 2},
        "nested": [[{"deep": authorization}], [account]],
        "account_number": number,
        "account_prefix": int(account[:9]) if number is not None else None,
    }


def refuse():
    authorization, account = credentials()
    code = int(account[:9]) if account.isdigit() else -32001
    raise RpcError(code, f"refused {authorization}", {"why": [{"account": as_number(account) or account}]})


def break_discover():
    global _discover_broken
    _discover_broken = True


def calls():
    with _lock:
        return {"requests": _counts["requests"] - 1, "discovers": _counts["discovers"]}


def main():
    args = arguments(__doc__.splitlines()[0], default_port=8767).parse_args()
    methods = {
        "echo": echo,
        "refuse": refuse,
        "break_discover": break_discover,
        "calls": calls,
        "rpc.discover": discover,
    }
    return serve({name: counted(name, method) for name, method in methods.items()}, None, args)


if __name__ == "__main__":
    sys.exit(main())
