# The server benchmark's trivial flow: two steps, no service (a node serves
# it on its own), so a run costs a sandbox, its spans and its records.
from hero_logic import flow


@flow(name="server_trivial", inputs={"n": "integer"})
def server_trivial(n):
    with flow.step("compute"):
        doubled = n * 2
    with flow.step("store"):
        result = {"result": doubled}
    return result
