# One CPU-bound loop, timed inside the interpreter so start-up is not counted.
import time
from hero_logic import flow


@flow(name="cpu_loop", inputs={"iterations": "integer"})
def cpu_loop(iterations):
    started = time.perf_counter()
    total = 0
    for i in range(iterations):
        total += i * i % 7
    return {"seconds": time.perf_counter() - started, "total": total}
