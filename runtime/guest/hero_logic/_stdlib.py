"""The standard-library modules a flow may import, and the guard that says so.

Only modules imported while the component is built exist later, so this list is
both what the build imports and what flow code may import. It is public API:
README.md lists it and a test imports every entry inside the sandbox.

The guard is a usability contract, not the security boundary: the sandbox's walls
are WebAssembly and the host functions, whatever Python code manages to import.
"""

import builtins

#: Importable from flow code. Keep sorted; README.md carries the same list.
STDLIB_MODULES = (
    "abc",
    "array",
    "ast",
    "base64",
    "binascii",
    "bisect",
    "calendar",
    "collections",
    "contextlib",
    "copy",
    "csv",
    "dataclasses",
    "datetime",
    "decimal",
    "difflib",
    "enum",
    "fnmatch",
    "fractions",
    "functools",
    "graphlib",
    "hashlib",
    "heapq",
    "hmac",
    "html",
    "io",
    "itertools",
    "json",
    "math",
    "numbers",
    "operator",
    "pprint",
    "random",
    "re",
    "secrets",
    "shlex",
    "statistics",
    "string",
    "struct",
    "textwrap",
    "time",
    "traceback",
    "types",
    "typing",
    "unicodedata",
    "urllib.parse",
    "uuid",
    "weakref",
    "zlib",
)

#: Flow modules are executed under this name; the guard only judges their imports,
#: so the standard library's own lazy imports keep working.
FLOW_MODULE_NAME = "__flow__"

_ALLOWED_TOP_LEVEL = frozenset(name.split(".")[0] for name in STDLIB_MODULES) | {"hero_logic"}
_ALLOWED_SUBMODULES = frozenset(STDLIB_MODULES)
_real_import = builtins.__import__


def _not_available(name):
    return ModuleNotFoundError(
        f"module {name!r} is not available in the hero_logic sandbox; "
        f"flows may import hero_logic and these standard-library modules: "
        f"{', '.join(STDLIB_MODULES)}",
        name=name,
    )


def _allowed(name):
    top = name.split(".")[0]
    if top == "hero_logic":
        return True
    if "." in name:
        return name in _ALLOWED_SUBMODULES
    return top in _ALLOWED_TOP_LEVEL


def _guarded_import(name, globals=None, locals=None, fromlist=(), level=0):
    if level == 0 and globals is not None and globals.get("__name__") == FLOW_MODULE_NAME:
        if not _allowed(name):
            raise _not_available(name)
        for item in fromlist or ():
            submodule = f"{name}.{item}"
            # `from urllib import parse` names a submodule; `from json import dumps` does not.
            if name in ("urllib",) and not _allowed(submodule):
                raise _not_available(submodule)
    return _real_import(name, globals, locals, fromlist, level)


def preload():
    """Import every listed module, so the build snapshot contains it."""
    import importlib

    for name in STDLIB_MODULES:
        importlib.import_module(name)


def install_guard():
    builtins.__import__ = _guarded_import
