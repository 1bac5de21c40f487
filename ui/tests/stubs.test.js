// The editor's completion and hover from the server's stubs: `node --test ui/tests/`.
import { test } from "node:test";
import assert from "node:assert/strict";
import { completionsAt, hoverFor, localTypes, parseStubs, snippetFor } from "../stubs.js";

const STUB = `from typing import Any

class Step:
    """A step span."""
    def set(self, **attrs: Any) -> "Step":
        """Add attributes to the span."""

class _Flow:
    Failed = Failed
    def step(self, name: str, **attrs: Any) -> Step:
        """Open a step span: \`with flow.step("name") as s:\`."""
    def invoke(self, flow_name: str, **inputs: Any) -> Any:
        """Run another flow
as a subflow."""

flow: _Flow

class _Service_weather:
    """Forecasts for a few cities."""
    def forecast(self, *, city: str, days: int = ...) -> dict[str, Any]:
        """Daily forecast for a city."""
    def request(self, *, city: str, days: int = ...) -> Request: ...

class _Services:
    weather: _Service_weather
    def gather(self, *requests: Request) -> list[Any]:
        """Make several calls at once."""

services: _Services
`;

test("flow's members complete with their signatures and docs", () => {
  const stubs = parseStubs(STUB);
  const names = completionsAt(stubs, "    with flow.").map((c) => c.name);
  assert.deepEqual(names.sort(), ["Failed", "invoke", "step"]);
  const step = completionsAt(stubs, "flow.st")[0];
  assert.equal(step.signature, "step(name: str, **attrs: Any) -> Step");
  assert.match(step.doc, /Open a step span/);
  assert.equal(hoverFor(stubs, ["flow", "invoke"]).doc, "Run another flow\nas a subflow.");
});

test("services and their methods complete, without the deferred request forms", () => {
  const stubs = parseStubs(STUB);
  assert.deepEqual(completionsAt(stubs, "x = services.").map((c) => c.name).sort(), ["gather", "weather"]);
  const methods = completionsAt(stubs, "services.weather.");
  assert.deepEqual(methods.map((c) => c.name), ["forecast"]);
  assert.equal(methods[0].signature, "forecast(city: str, days: int = ...) -> dict[str, Any]");
  assert.equal(hoverFor(stubs, ["services", "weather"]).doc, "Forecasts for a few cities.");
  assert.deepEqual(completionsAt(stubs, "nothing.here."), []);
  assert.deepEqual(completionsAt(stubs, "serv").map((c) => c.name), ["services"]);
});

test("a name bound by `with flow.step(...) as s:` completes as a Step", () => {
  const stubs = parseStubs(STUB);
  const source = 'with flow.step("a", x=1) as s:\n    pass\nwith open("f") as handle:\n    pass\n';
  const locals = localTypes(stubs, source);
  assert.deepEqual([...locals], [["s", "Step"]]);
  assert.deepEqual(completionsAt(stubs, "    s.", locals).map((c) => c.name), ["set"]);
  assert.deepEqual(completionsAt(stubs, "    handle.", locals), [], "what the stubs do not type offers nothing");
  // Rebound to something else further down: no longer a Step.
  assert.deepEqual([...localTypes(stubs, source + "with services.weather.forecast(city='x') as s:\n")], []);
});

test("completion inserts a method's required parameters as tab stops", () => {
  const stubs = parseStubs(STUB);
  const member = (text) => completionsAt(stubs, text)[0];
  assert.equal(snippetFor(member("flow.ste")), "step(${1:name})");
  assert.equal(snippetFor(member("flow.inv")), "invoke(${1:flow_name})");
  assert.equal(snippetFor(member("services.weather.fore")), "forecast(city=${1:city})", "keyword-only, without the optional days");
  assert.equal(snippetFor(member("services.ga")), "gather($0)");
  assert.equal(snippetFor(member("services.wea")), "weather", "a property is its name");
  assert.equal(snippetFor({ name: "m", kind: "method", params: "self, rows: list[tuple[str, dict[str, Any]]], *, key: str" }), "m(${1:rows}, key=${2:key})");
});
