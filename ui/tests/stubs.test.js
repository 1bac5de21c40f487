// The editor's completion and hover from the server's stubs: `node --test ui/tests/`.
import { test } from "node:test";
import assert from "node:assert/strict";
import { completionsAt, hoverFor, parseStubs } from "../stubs.js";

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
