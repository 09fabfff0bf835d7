"""The shape of the house: how mpupdate's core modules import one another, what importing the
package costs, and the typed boundary to the compiled module.

The core is ``mpupdate/*.py`` (the package's own modules; ``mpupdate.fakes`` is test tooling
built on top of it and is not part of the graph). Imports are read from the source with ``ast``,
wherever they are: at module level, under ``if TYPE_CHECKING:``, or inside a function. An import
moved into a function or under TYPE_CHECKING still counts, so neither can hide a cycle.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import pytest

import mpupdate
from mpupdate._native import ffi, lib

PACKAGE = Path(mpupdate.__file__).resolve().parent
STUB = PACKAGE / "_mpclient.pyi"

#: Every core module by layer, lowest first: a module imports only from layers below its own.
#: A new module gets a line here (the test says so); that is where its place in the house is
#: decided. ``mpupdate._mpclient`` is the compiled module (its stub is ``_mpclient.pyi``).
LAYERS: tuple[tuple[str, ...], ...] = (
    # no imports of ours: the compiled module; stand-ins for dataclasses and typing; the logger
    ("_mpclient", "_classes", "_log"),
    ("constants", "filetime", "clock"),  # the numbers, with their evidence; time
    ("hresults", "versions", "events"),  # HRESULT helpers; values copied out of C structures
    ("results",),  # how an update ended: Outcome, Anomaly, UpdateResult
    ("errors",),  # the exception hierarchy and Step
    ("machine", "_native"),  # the pure state machine; the callback's registry and sinks
    ("backends",),  # the Backend seam (and its clock), loading the real DLL
    ("handles",),  # handle ownership, deferred closes
    ("client",),  # Client and UpdateOperation
    ("api",),  # update() / run_update()
    ("aio",),  # update_async()
    ("__init__",),  # the package: the public names
    ("_display", "_lastrun"),  # the command's progress displays; the last update's record
    ("cli",),  # the mpupdate command (reaches the fakes by name, through importlib)
    ("__main__",),  # python -m mpupdate
)


@dataclass(frozen=True)
class Import:
    """One import of a core module by another."""

    importer: str
    imported: str
    where: str  # "module", "TYPE_CHECKING" or "function"
    line: int


def core_modules() -> list[str]:
    return sorted(path.stem for path in PACKAGE.glob("*.py"))


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _targets(node: ast.AST, known: set[str]) -> Iterator[str]:
    """The core modules an import statement imports (``from . import x`` names module x)."""
    if isinstance(node, ast.Import):
        for alias in node.names:
            parts = alias.name.split(".")
            if parts[0] == "mpupdate":
                yield parts[1] if len(parts) > 1 else "__init__"
    elif isinstance(node, ast.ImportFrom):
        if node.level == 0 and (node.module or "").split(".")[0] != "mpupdate":
            return
        if node.level > 1:
            return  # beyond the package: not a core module
        base = (node.module or "").split(".")
        if node.level == 0:
            base = base[1:]
        if base and base != [""]:
            yield base[0]
        else:  # from . import a, b / from mpupdate import a, b
            for alias in node.names:
                yield alias.name if alias.name in known else "__init__"


def imports_of(module: str) -> list[Import]:
    """Every import of a core module in ``module``'s source, and where it happens."""
    tree = ast.parse((PACKAGE / f"{module}.py").read_text(encoding="utf-8"))
    known = set(core_modules()) | {"_mpclient"}
    found: list[Import] = []

    def visit(node: ast.AST, where: str) -> None:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            for target in _targets(node, known):
                if target != module:
                    found.append(Import(module, target, where, node.lineno))
            return
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.body:
                visit(child, "TYPE_CHECKING")
            for child in node.orelse:
                visit(child, where)
            return
        inner = "function" if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) else where
        for sub in ast.iter_child_nodes(node):
            visit(sub, inner)

    visit(tree, "module")
    return found


def all_imports() -> list[Import]:
    return [edge for module in core_modules() for edge in imports_of(module)]


def cycles(edges: list[Import]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan's algorithm)."""
    graph: dict[str, set[str]] = {}
    for edge in edges:
        graph.setdefault(edge.importer, set()).add(edge.imported)
        graph.setdefault(edge.imported, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                connect(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return found


# -- the import graph --------------------------------------------------------------------------


def test_the_reader_sees_the_imports_it_must_see() -> None:
    # The helpers above are what the other tests stand on: check them on known facts.
    edges = {(e.importer, e.imported, e.where) for e in all_imports()}
    assert ("client", "_native", "module") in edges  # from . import _native
    assert ("__init__", "_mpclient", "module") in edges  # inside try: at module level
    assert ("__init__", "aio", "function") in edges  # update_async, imported on first use
    assert ("__init__", "aio", "TYPE_CHECKING") in edges
    assert ("results", "events", "TYPE_CHECKING") in edges
    assert ("backends", "_native", "function") in edges
    assert cycles([Import("a", "b", "module", 1), Import("b", "a", "function", 1)]) == [["a", "b"]]


def test_no_import_cycles_among_the_core_modules() -> None:
    # All imports count: one under TYPE_CHECKING or inside a function must not hide a cycle.
    assert cycles(all_imports()) == []


def test_every_core_module_has_a_layer() -> None:
    placed = [module for layer in LAYERS for module in layer]
    assert len(placed) == len(set(placed))
    missing = sorted(set(core_modules()) - set(placed))
    assert missing == [], f"add {missing} to LAYERS in {__file__}: which layer does it belong to?"
    assert sorted(set(placed) - {"_mpclient"}) == core_modules()


def test_every_import_goes_down_the_layers() -> None:
    layer = {module: n for n, modules in enumerate(LAYERS) for module in modules}
    upward = [
        f"{e.importer} (layer {layer[e.importer]}) imports {e.imported} "
        f"(layer {layer[e.imported]}) at line {e.line}, {e.where}"
        for e in all_imports()
        if layer[e.imported] >= layer[e.importer]
    ]
    assert upward == []


def test_the_machine_is_pure() -> None:
    # No I/O, no threads, no clock, no C: at run time the machine reaches only these, and
    # _log, through which it logs its anomalies (logging is imported on the first one).
    reached: set[str] = set()
    todo = ["machine"]
    while todo:
        module = todo.pop()
        for edge in imports_of(module):
            if edge.where != "TYPE_CHECKING" and edge.imported not in reached:
                reached.add(edge.imported)
                todo.append(edge.imported)
    assert reached - {"_log"} == {"_classes", "constants", "errors", "hresults", "results"}


def test_the_errors_do_not_import_the_machine_or_the_client() -> None:
    imported = {e.imported for e in imports_of("errors")}
    assert imported == {"constants", "hresults", "results"}


def test_the_core_never_imports_the_fakes() -> None:
    # The fakes import the core; the core reaches them only by name, on request
    # (resolve_backend("fake"), through importlib).
    for module in core_modules():
        source = (PACKAGE / f"{module}.py").read_text(encoding="utf-8")
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.ImportFrom):
                assert not (node.module or "").startswith(("fakes", "mpupdate.fakes")), module
                assert "fakes" not in {alias.name for alias in node.names}, module
            elif isinstance(node, ast.Import):
                assert not any(a.name.startswith("mpupdate.fakes") for a in node.names), module


# -- objects keep to their own privates --------------------------------------------------------


def _private(name: str) -> bool:
    dunder_or_sunder = name.endswith("_") and (name.startswith("__") or len(name) > 2)
    return name.startswith("_") and not dunder_or_sunder


def test_no_core_module_reaches_into_another_objects_privates() -> None:
    # self._x and cls._x only: another object's (or module's) _x is asked for through a method.
    reaches = []
    for module in core_modules():
        tree = ast.parse((PACKAGE / f"{module}.py").read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and _private(node.attr):
                owner = node.value
                if not (isinstance(owner, ast.Name) and owner.id in ("self", "cls")):
                    reaches.append(f"{module}.py:{node.lineno}: {ast.unparse(node)}")
    assert reaches == []


# -- what importing the package costs ----------------------------------------------------------

#: Never imported by ``import mpupdate``: asyncio (the aio façade is imported on first use),
#: the test tooling, the CLI's libraries, ctypes (FormatMessageW and the Windows folder lookups
#: load it on first use), and the heavier parts of logging and the standard library.
NOT_AT_IMPORT = (
    "asyncio",
    "concurrent.futures",
    "ctypes",
    "subprocess",
    "socket",
    "ssl",
    "logging.handlers",
    "logging.config",
    "hypothesis",
    "pytest",
    "_pytest",
    "rich",
    "mpupdate.aio",
    "mpupdate.fakes",
)


def _modules_after(code: str) -> set[str]:
    # The package under test first on the path: an embedded Python ignores PYTHONPATH.
    head = f"import sys\nsys.path.insert(0, {str(PACKAGE.parent)!r})\n"
    done = subprocess.run(
        [sys.executable, "-c", f"{head}{code}\nprint('\\n'.join(sorted(sys.modules)))"],
        capture_output=True,
        text=True,
        check=True,
    )
    return set(done.stdout.split())


#: Core modules imported on first use, not by ``import mpupdate``: the asyncio façade, the
#: FILETIME conversions (datetime), which timestamps and version queries import, and the
#: ``mpupdate`` command (``mpupdate.cli``, ``python -m mpupdate``).
ON_FIRST_USE = ("aio", "filetime", "cli", "__main__", "_display", "_lastrun")


def test_import_mpupdate_stays_light() -> None:
    loaded = _modules_after("import mpupdate")
    assert sorted(loaded & set(NOT_AT_IMPORT)) == []
    ours = {m for m in loaded if m.startswith("mpupdate.")} - {"mpupdate._mpclient.lib"}
    at_import = [m for m in core_modules() if m != "__init__" and m not in ON_FIRST_USE]
    assert ours == {f"mpupdate.{m}" for m in at_import} | {"mpupdate._mpclient"}


#: What ``import mpupdate`` must not import, exactly: each is imported where it is first needed, if
#: ever. logging by mpupdate._log at the first record, asyncio by mpupdate.aio; dataclasses (and
#: the inspect it brings) and typing (and the re it brings) by no core module at run time,
#: mpupdate._classes standing in for them; pathlib and urllib by none at all; hypothesis and rich
#: are the test and CLI tooling's.
NEVER_AT_IMPORT = (
    "asyncio",
    "dataclasses",
    "hypothesis",
    "inspect",
    "logging",
    "pathlib",
    "re",
    "rich",
    "typing",
    "urllib",
)


def _modules_without_site(code: str) -> set[str]:
    """The modules loaded after running ``code`` in a fresh interpreter started without site, as
    an installed wheel is imported (site's finder for an editable install imports pathlib and
    re itself), the package under test first on the path."""
    path = [str(PACKAGE.parent), *sys.path]
    head = f"import sys\nsys.path[:] = {path!r}\n"
    done = subprocess.run(
        [sys.executable, "-S", "-c", f"{head}{code}\nprint('\\n'.join(sorted(sys.modules)))"],
        capture_output=True,
        text=True,
        check=True,
    )
    return set(done.stdout.split())


def test_import_mpupdate_imports_none_of_the_heavy_modules() -> None:
    loaded = _modules_without_site("import mpupdate")
    assert "mpupdate.client" in loaded  # the whole package was imported
    assert sorted(loaded & set(NEVER_AT_IMPORT)) == []


def test_logging_is_imported_with_the_first_record() -> None:
    code = (
        "import mpupdate\n"
        "assert 'logging' not in sys.modules\n"
        "from mpupdate import _log\n"
        "_log.warning('first')\n"
        "import logging\n"
        "[handler] = logging.getLogger('mpupdate').handlers\n"
        "assert type(handler) is logging.NullHandler\n"
    )
    assert "logging" in _modules_without_site(code)


def test_update_async_brings_asyncio_only_when_asked_for() -> None:
    loaded = _modules_after("import mpupdate\nmpupdate.update_async")
    assert {"asyncio", "mpupdate.aio"} <= loaded
    assert "mpupdate.fakes" not in loaded


# -- the typed boundary to the compiled module ---------------------------------------------------


def _stub_class(name: str) -> ast.ClassDef:
    tree = ast.parse(STUB.read_text(encoding="utf-8"))
    [found] = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == name]
    return found


def _members(cls: ast.ClassDef) -> dict[str, ast.AST]:
    """The names a stub class declares on this platform (its ``if sys.platform`` tests
    evaluated here, as a type checker evaluates them for its target)."""
    members: dict[str, ast.AST] = {}

    def collect(body: list[ast.stmt]) -> None:
        for node in body:
            if isinstance(node, ast.FunctionDef):
                members[node.name] = node
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                members[node.target.id] = node
            elif isinstance(node, ast.If):
                condition = ast.unparse(node.test)
                assert condition.startswith("sys.platform"), condition
                collect(node.body if eval(condition, {"sys": sys}) else node.orelse)

    collect(cls.body)
    return members


def _python_type(ctype: object, as_argument: bool) -> str:
    """The annotation the stub gives a C type: the mapping written at the top of the stub."""
    kind, cname = ctype.kind, ctype.cname  # type: ignore[attr-defined]
    if kind == "void":
        return "None"
    if kind == "primitive":
        return "int"
    if as_argument and cname == "char *":
        return "bytes"
    return "_CData"


def _signature(function: ast.FunctionDef) -> tuple[list[str], str]:
    args = function.args
    assert not args.kwonlyargs and args.vararg is None and args.kwarg is None, function.name
    every = [*args.posonlyargs, *args.args]
    assert every[0].arg == "self" and not args.defaults, function.name
    # C has no keyword arguments, and cffi takes none: everything after self is positional-only.
    assert [a.arg for a in args.args] in ([], ["self"]), f"{function.name}: not positional-only"
    params = [ast.unparse(a.annotation) for a in every[1:] if a.annotation]
    assert len(params) == len(every) - 1, f"{function.name}: unannotated parameter"
    assert function.returns is not None
    return params, ast.unparse(function.returns)


def _c_signature(function: object) -> tuple[list[str], str]:
    ctype = ffi.typeof(function)
    return (
        [_python_type(arg, as_argument=True) for arg in ctype.args],
        _python_type(ctype.result, as_argument=False),
    )


def test_the_stub_declares_every_function_of_lib_as_its_c_declaration_says() -> None:
    members = _members(_stub_class("_Lib"))
    assert sorted(members) == sorted(dir(lib))
    for name, node in members.items():
        if isinstance(node, ast.AnnAssign):  # a #define'd integer constant
            assert ast.unparse(node.annotation) == "int", name
            assert isinstance(getattr(lib, name), int), name
        else:
            assert isinstance(node, ast.FunctionDef)
            assert _signature(node) == _c_signature(getattr(lib, name)), name


def test_every_ffi_member_the_stub_declares_exists() -> None:
    declared = set(_members(_stub_class("_FFI")))
    assert sorted(declared - set(dir(ffi))) == []
    # and everything the package calls is declared (mypy --strict checks the calls themselves)
    assert {"new", "cast", "string", "NULL", "sizeof", "memmove", "def_extern"} <= declared
    assert {"callback", "buffer", "addressof", "typeof", "from_buffer", "offsetof"} <= declared


@pytest.mark.parametrize(
    ("name", "expected"),
    [("lib", "_Lib"), ("ffi", "_FFI")],
)
def test_the_stub_types_ffi_and_lib(name: str, expected: Optional[str]) -> None:
    tree = ast.parse(STUB.read_text(encoding="utf-8"))
    annotations = {
        node.target.id: ast.unparse(node.annotation)
        for node in tree.body
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
    }
    assert annotations[name] == expected
