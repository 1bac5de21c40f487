import time

from hero_logic import flow, services


@flow(
    name="payouts",
    inputs={"calls": {"type": "integer", "default": 20}, "pause": {"type": "number", "default": 0.5}},
    description="Pay out 1, 2, ... `calls` through the ledger: durable, so a crash repeats no payout.",
    services=["ledger"],
    durable=True,
)
def payouts(calls, pause):
    """Each payout is a service call in its own step; kill the server mid-way and start it again."""
    total = 0
    for i in range(calls):
        with flow.step(f"pay {i + 1}") as s:
            total = services.ledger.add(amount=i + 1)["total"]
            s.set(total=total)
        time.sleep(pause)
    return {"paid": calls, "total": total}
