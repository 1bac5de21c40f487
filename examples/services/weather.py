#!/usr/bin/env python3
"""An example JSON-RPC 2.0 service with an OpenRPC document, for hero_logic.

    python3 examples/services/weather.py --port 8765          # HTTP on 127.0.0.1
    python3 examples/services/weather.py --unix /tmp/w.sock   # a Unix socket

Methods: forecast(city, days), cities(), alert(city) (always a JSON-RPC error),
slow(seconds) (answers late: for timeouts), and rpc.discover (the document).
Standard library only, so it runs wherever python3 does.
"""

import argparse
import json
import os
import socketserver
import sys
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

CITIES = {
    "Ghent": {"country": "BE", "base": 11},
    "Lisbon": {"country": "PT", "base": 19},
    "Oslo": {"country": "NO", "base": 4},
}

DOCUMENT = {
    "openrpc": "1.2.6",
    "info": {"title": "weather", "version": "1.0.0", "description": "Forecasts for a few cities."},
    "methods": [
        {
            "name": "forecast",
            "summary": "Daily forecast for a city.",
            "paramStructure": "by-name",
            "params": [
                {"name": "city", "required": True, "description": "One of cities().", "schema": {"type": "string", "enum": sorted(CITIES)}},
                {"name": "days", "required": False, "description": "How many days, 1 to 7.", "schema": {"type": "integer", "minimum": 1, "maximum": 7}},
            ],
            "result": {"name": "forecast", "schema": {"type": "object"}},
        },
        {
            "name": "cities",
            "summary": "The cities with forecasts.",
            "params": [],
            "result": {"name": "cities", "schema": {"type": "array", "items": {"type": "string"}}},
        },
        {
            "name": "alert",
            "summary": "Weather alerts for a city (this example has none: it answers a JSON-RPC error).",
            "params": [{"name": "city", "required": True, "schema": {"type": "string"}}],
            "result": {"name": "alerts", "schema": {"type": "array"}},
        },
        {
            "name": "slow",
            "summary": "Answers after `seconds`: a service that hangs.",
            "params": [{"name": "seconds", "required": True, "schema": {"type": "number", "minimum": 0}}],
            "result": {"name": "slept", "schema": {"type": "number"}},
        },
    ],
}


class RpcError(Exception):
    def __init__(self, code, message, data=None):
        super().__init__(message)
        self.code, self.message, self.data = code, message, data


def forecast(city, days=3):
    if city not in CITIES:
        raise RpcError(-32602, f"unknown city {city!r}", {"cities": sorted(CITIES)})
    base = CITIES[city]["base"]
    return {"city": city, "days": [{"day": d, "high_c": base + d % 3, "low_c": base - 5 + d % 2} for d in range(days)]}


def alert(city):
    raise RpcError(4004, f"no alert feed for {city}", {"city": city, "retry": False})


def slow(seconds):
    time.sleep(seconds)
    return seconds


METHODS = {
    "forecast": forecast,
    "cities": lambda: sorted(CITIES),
    "alert": alert,
    "slow": slow,
    "rpc.discover": lambda: DOCUMENT,
}


def answer(request):
    """The JSON-RPC response to one request object (None for a notification)."""
    if not isinstance(request, dict) or request.get("jsonrpc") != "2.0" or "method" not in request:
        return {"jsonrpc": "2.0", "id": None, "error": {"code": -32600, "message": "invalid request"}}
    rid = request.get("id")
    method = METHODS.get(request["method"])
    try:
        if method is None:
            raise RpcError(-32601, f"method not found: {request['method']}")
        params = request.get("params", {})
        try:
            result = method(**params) if isinstance(params, dict) else method(*params)
        except TypeError as error:
            raise RpcError(-32602, f"invalid params: {error}")
        response = {"jsonrpc": "2.0", "id": rid, "result": result}
    except RpcError as error:
        response = {"jsonrpc": "2.0", "id": rid, "error": {"code": error.code, "message": error.message, "data": error.data}}
    return None if "id" not in request else response


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        length = int(self.headers.get("Content-Length", 0))
        try:
            request = json.loads(self.rfile.read(length))
            response = [answer(r) for r in request] if isinstance(request, list) else answer(request)
        except json.JSONDecodeError:
            response = {"jsonrpc": "2.0", "id": None, "error": {"code": -32700, "message": "parse error"}}
        body = json.dumps(response).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class ThreadingHTTPServer(socketserver.ThreadingMixIn, HTTPServer):
    daemon_threads = True


class UnixHTTPServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True

    def get_request(self):
        request, _ = super().get_request()
        return request, ("unix", 0)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8765, help="HTTP port on 127.0.0.1 (0 picks a free one)")
    parser.add_argument("--unix", help="listen on this Unix socket instead")
    args = parser.parse_args()
    if args.unix:
        if os.path.exists(args.unix):
            os.unlink(args.unix)
        server = UnixHTTPServer(args.unix, Handler)
        print(f"listening on unix://{args.unix}", flush=True)
    else:
        server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
        print(f"listening on http://127.0.0.1:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
