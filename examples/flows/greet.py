from hero_logic import flow


@flow(name="greet", inputs={"who": "string"}, description="Say hello, in two steps.")
def greet(who):
    with flow.step("build", who=who) as s:
        text = f"hello {who}"
        s.set(length=len(text))
    with flow.step("shout"):
        print("shouting")
        return {"greeting": text.upper()}
