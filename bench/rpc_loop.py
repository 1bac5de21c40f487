# Calls one service method `count` times in a row: the host's cost per call.
from hero_logic import flow, services


@flow(name="rpc_loop", inputs={"count": "integer"}, services=["weather"])
def rpc_loop(count):
    for _ in range(count):
        services.weather.cities()
    return count
