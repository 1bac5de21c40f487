# Waits inside a service call until the benchmark releases it: a live run.
from hero_logic import flow, services


@flow(name="parked", services=["bench"])
def parked():
    with flow.step("wait"):
        services.bench.park()
    return "released"
