#!/usr/bin/env python3
"""An example JSON-RPC 2.0 service with an OpenRPC document, for hero_logic.

    python3 examples/services/weather.py --port 8765          # HTTP on 127.0.0.1
    python3 examples/services/weather.py --unix /tmp/w.sock   # a Unix socket
    python3 examples/services/weather.py --port 8443 --tls cert.pem key.pem   # HTTPS

Methods: forecast(city, days), cities(), alert(city) (always a JSON-RPC error),
slow(seconds) (answers late: for timeouts), connections() (how many
connections clients have opened), and rpc.discover (the document).
Standard library only (with `jsonrpc_server.py` beside it), so it runs
wherever python3 does.
"""

import json
import sys
import time
from pathlib import Path

from jsonrpc_server import RpcError, arguments, connections_accepted, serve

CITIES = {
    "Ghent": {"country": "BE", "base": 11},
    "Lisbon": {"country": "PT", "base": 19},
    "Oslo": {"country": "NO", "base": 4},
}

#: The OpenRPC document, kept beside this file so `hero_logic services add
#: --openrpc` and this service answer the same one.
DOCUMENT = json.loads((Path(__file__).parent / "weather.openrpc.json").read_text())


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
    "connections": connections_accepted,
}


def main():
    args = arguments(__doc__.splitlines()[0], default_port=8765).parse_args()
    return serve(METHODS, DOCUMENT, args)


if __name__ == "__main__":
    sys.exit(main())
