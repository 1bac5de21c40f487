"""The guest side of `describe` and `run`: load a flow module, find its flows,
call one, and turn the outcome into JSON for the host."""

import ast
import builtins
import json
import linecache
import sys

from . import _errors, _flow, _host, _stdlib, _streams


class GuestError(Exception):
    """An outcome the host gets as the `err` side of a result: a JSON object."""

    def __init__(self, error):
        super().__init__(error.get("message"))
        self.error = error

    def to_json(self):
        return json.dumps(self.error, default=repr, ensure_ascii=False)


def _load(source):
    """Execute the module's source and return the flows it declared."""
    _flow.registry.clear()
    _flow._open_steps.clear()
    try:
        code = _compile(source)
    except SyntaxError as exc:
        raise GuestError(
            {
                "type": type(exc).__name__,
                "message": exc.msg,
                "line": exc.lineno,
                "column": exc.offset,
                "traceback": None,
            }
        ) from None
    except Exception as exc:
        # Compiling can fail other ways (too deeply nested code is a
        # RecursionError); an exception leaving `describe` or `run` would trap.
        raise GuestError(
            {
                "type": type(exc).__name__,
                "message": f"compiling the module failed: {exc}",
                "line": None,
                "traceback": None,
            }
        ) from None
    # Lets tracebacks quote the flow's own lines.
    linecache.cache[_errors.FLOW_FILENAME] = (
        len(source),
        None,
        source.splitlines(True),
        _errors.FLOW_FILENAME,
    )
    namespace = {"__name__": _stdlib.FLOW_MODULE_NAME, "__builtins__": builtins}
    try:
        exec(code, namespace)
    except BaseException as exc:
        error = _errors.error_of(exc)
        error["message"] = f"loading the module failed: {error['message']}"
        raise GuestError(error) from None
    return list(_flow.registry)


def _compile(source):
    try:
        return compile(source, _errors.FLOW_FILENAME, "exec", dont_inherit=True)
    except UnicodeEncodeError:
        # The compiler cleans docstrings as UTF-8, which a lone surrogate
        # ("\\ud800") in one fails. A docstring is documentation: such
        # characters become U+FFFD, as they would on the way to the host.
        tree = ast.parse(source, _errors.FLOW_FILENAME)
        for node in ast.walk(tree):
            if not isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) or not node.body:
                continue
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
                first.value.value = _host.text(first.value.value)
        return compile(tree, _errors.FLOW_FILENAME, "exec", dont_inherit=True)


def _step_names(tree, spec):
    """Names of the `flow.step("...")` blocks written inside the flow's function."""
    first_line = spec.func.__code__.co_firstlineno
    for node in ast.walk(tree):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        lines = [node.lineno] + [d.lineno for d in node.decorator_list]
        if node.name != spec.func.__name__ or first_line not in lines:
            continue
        names = []
        for call in ast.walk(node):
            if (
                isinstance(call, ast.Call)
                and isinstance(call.func, ast.Attribute)
                and call.func.attr == "step"
                and call.args
                and isinstance(call.args[0], ast.Constant)
                and isinstance(call.args[0].value, str)
                and call.args[0].value not in names
            ):
                names.append(call.args[0].value)
        return names
    return []


def describe(source):
    flows = _load(source)
    if not flows:
        raise GuestError(
            {
                "type": "NoFlow",
                "message": "the module declares no flow: decorate a function with @flow(...)",
                "line": None,
                "traceback": None,
            }
        )
    tree = ast.parse(source)
    described = []
    for spec in flows:
        entry = spec.to_json()
        entry["steps"] = _step_names(tree, spec)
        described.append(entry)
    return json.dumps(described, ensure_ascii=False)


def run(source, entry, input_json):
    sys.stdout, sys.stderr = _streams.stdout, _streams.stderr
    _streams.reset()
    flows = _load(source)
    spec = next((s for s in flows if s.name == entry), None)
    if spec is None:
        names = ", ".join(s.name for s in flows) or "none"
        raise GuestError(
            {
                "type": "UnknownFlow",
                "message": f"the module declares no flow named {entry!r} (it declares: {names})",
                "line": None,
                "traceback": None,
            }
        )
    inputs = json.loads(input_json)
    try:
        output = spec.func(**inputs)
    except BaseException as exc:
        _streams.flush_all()
        raise GuestError(_errors.error_of(exc)) from None
    _streams.flush_all()
    try:
        return json.dumps(output, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise GuestError(
            {
                "type": "OutputError",
                "message": f"the flow's return value is not JSON: {exc}",
                "line": None,
                "traceback": None,
            }
        ) from None
