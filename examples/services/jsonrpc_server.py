"""A small JSON-RPC 2.0 server over HTTP or a Unix socket, standard library
only: the shared part of the example services.

A service is a dict of method name to function (called with the request's
params by name or by position) and its OpenRPC document, answered for
`rpc.discover` (unless the dict has its own). A function raises `RpcError` to answer a JSON-RPC error.
`connections_accepted()` tells how many connections clients have opened: a
client that keeps its connections alive opens few. `request_headers()`
gives a method the HTTP headers of the request it is answering.
"""

import argparse
import json
import os
import socket
import socketserver
import ssl
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer


class RpcError(Exception):
    def __init__(self, code, message, data=None):
        super().__init__(message)
        self.code, self.message, self.data = code, message, data


_accepted = 0
_accepted_lock = threading.Lock()
# The request each handler thread is answering, for `request_headers()`.
_current = threading.local()


def request_headers():
    """The HTTP headers of the request being answered, by name."""
    return dict(getattr(_current, "headers", {}))


def connections_accepted():
    """Connections accepted since the service started."""
    return _accepted


def _count_connection():
    global _accepted
    with _accepted_lock:
        _accepted += 1


def answer(methods, request):
    """The JSON-RPC response to one request object (None for a notification)."""
    if not isinstance(request, dict) or request.get("jsonrpc") != "2.0" or "method" not in request:
        return {"jsonrpc": "2.0", "id": None, "error": {"code": -32600, "message": "invalid request"}}
    rid = request.get("id")
    method = methods.get(request["method"])
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


def handler_for(methods):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self):
            # The head and the body go out in two writes: with Nagle on, on a
            # kept-alive connection the body waits for the client's delayed
            # ACK of the head (40 ms a call on Linux). Unix sockets have none.
            self.disable_nagle_algorithm = self.request.family != socket.AF_UNIX
            super().setup()
            # One handler per connection; it answers every request sent on it.
            _count_connection()

        def do_POST(self):
            length = int(self.headers.get("Content-Length", 0))
            _current.headers = self.headers
            try:
                request = json.loads(self.rfile.read(length))
                if isinstance(request, list):
                    response = [answer(methods, r) for r in request]
                else:
                    response = answer(methods, request)
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

    return Handler


class ThreadingHTTPServer(socketserver.ThreadingMixIn, HTTPServer):
    daemon_threads = True


class UnixHTTPServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True

    def get_request(self):
        request, _ = super().get_request()
        return request, ("unix", 0)


def arguments(description, default_port):
    """The command line every example service takes: --port or --unix."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--port", type=int, default=default_port, help="HTTP port on 127.0.0.1 (0 picks a free one)")
    parser.add_argument("--unix", help="listen on this Unix socket instead")
    parser.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"), help="serve HTTPS with this certificate chain and key (PEM)")
    return parser


def serve(methods, document, args):
    """Serve until interrupted; prints `listening on URL` once it listens."""
    methods = {"rpc.discover": lambda: document, **methods}
    handler = handler_for(methods)
    if args.unix:
        if os.path.exists(args.unix):
            os.unlink(args.unix)
        server = UnixHTTPServer(args.unix, handler)
        print(f"listening on unix://{args.unix}", flush=True)
    elif args.tls:
        server = ThreadingHTTPServer(("127.0.0.1", args.port), handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(*args.tls)
        server.socket = context.wrap_socket(server.socket, server_side=True)
        # The certificate names localhost, not the address.
        print(f"listening on https://localhost:{server.server_address[1]}", flush=True)
    else:
        server = ThreadingHTTPServer(("127.0.0.1", args.port), handler)
        print(f"listening on http://127.0.0.1:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0
