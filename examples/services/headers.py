#!/usr/bin/env python3
"""A JSON-RPC 2.0 service that answers with the headers it received, for
checking the headers hero_logic adds to calls (secrets among them).

    python3 examples/services/headers.py --port 0

Methods: received() (every header by lowercase name, and the SHA-256 of Authorization, so a
test can tell the value arrived without it being shown), refuse() (a
JSON-RPC error whose message and data echo Authorization).
"""

import hashlib
import sys

from jsonrpc_server import RpcError, arguments, request_headers, serve

DOCUMENT = {
    "openrpc": "1.2.6",
    "info": {"title": "headers", "version": "1.0.0", "description": "Echoes the headers of each call."},
    "methods": [
        {"name": "received", "params": [], "result": {"name": "headers", "schema": {"type": "object"}}},
        {"name": "refuse", "params": [], "result": {"name": "nothing", "schema": {"type": "null"}}},
    ],
}


def lowercased():
    """The request's headers by lowercase name (HTTP names are case-insensitive)."""
    return {name.lower(): value for name, value in request_headers().items()}


def received():
    headers = lowercased()
    authorization = headers.get("authorization", "")
    return {"headers": headers, "authorization_sha256": hashlib.sha256(authorization.encode()).hexdigest()}


def refuse():
    authorization = lowercased().get("authorization", "")
    raise RpcError(-32001, f"refused {authorization}", {"authorization": authorization})


def main():
    args = arguments(__doc__.splitlines()[0], default_port=8766).parse_args()
    return serve({"received": received, "refuse": refuse}, DOCUMENT, args)


if __name__ == "__main__":
    sys.exit(main())
