# The benchmark's trivial flow: 3 steps, 2 calls to a built-in service.
from hero_logic import flow, services


@flow(name="trivial", inputs={"n": "integer"}, services=["bench"])
def trivial(n):
    with flow.step("fetch"):
        fetched = services.bench.echo(value=n)
    with flow.step("compute"):
        doubled = fetched["value"] * 2
    with flow.step("store"):
        services.bench.echo(value=doubled)
    return {"result": doubled}
