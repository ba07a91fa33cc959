"""Dependencies point one way: spu_lite -> compiler; spu_lite -> runtime -> compiler.ir.

compiler/ and runtime/ sit at the top of the repository and install as spu_lite.compiler
and spu_lite.runtime (pyproject.toml's package-dir), so every import names them so.
"""
import ast
import pathlib
import tomllib

ROOT = pathlib.Path(__file__).resolve().parents[1]
FOLDERS = {"spu_lite": "spu_lite", "compiler": "spu_lite.compiler", "runtime": "spu_lite.runtime"}


def _imports(folder):
    for path in (ROOT / folder).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                yield path, node.module
            elif isinstance(node, ast.Import):
                for a in node.names:
                    yield path, a.name


def _ours(module):
    return module.split(".")[0] in ("spu_lite", "compiler", "runtime")


def test_runtime_imports_only_itself_and_the_ir():
    bad = [(str(p.relative_to(ROOT)), m) for p, m in _imports("runtime") if _ours(m)
           and not m.startswith(("spu_lite.runtime", "spu_lite.compiler.ir"))]
    assert bad == []


def test_compiler_imports_nothing_of_ours_but_itself():
    bad = [(str(p.relative_to(ROOT)), m) for p, m in _imports("compiler") if _ours(m)
           and not m.startswith("spu_lite.compiler")]
    assert bad == []


def test_imports_use_the_installed_names():
    """`import compiler` works only from a source checkout; installed, it is spu_lite.compiler."""
    bad = [(str(p.relative_to(ROOT)), m) for folder in ("spu_lite", "compiler", "runtime", "tests")
           for p, m in _imports(folder) if m.split(".")[0] in ("compiler", "runtime")]
    assert bad == []


def test_every_package_is_installed_under_spu_lite():
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert cfg["package-dir"] == {v: k for k, v in FOLDERS.items()}
    found = {FOLDERS[d.relative_to(ROOT).parts[0]] + "".join(
        "." + part for part in d.relative_to(ROOT).parts[1:])
        for folder in FOLDERS for d in [ROOT / folder, *(ROOT / folder).rglob("*")]
        if d.is_dir() and (d / "__init__.py").exists()}
    assert sorted(cfg["packages"]) == sorted(found)


def test_modules_stay_small():
    big = [(str(p.relative_to(ROOT)), n) for pkg in FOLDERS
           for p in (ROOT / pkg).rglob("*.py") if (n := len(p.read_text().splitlines())) > 450]
    assert big == [], "split these modules: one idea per file"


# ---- no import cycles, function-level imports included ---------------------------------
def _module_name(path) -> str:
    """The installed name: compiler/ir/program.py is spu_lite.compiler.ir.program."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    parts = FOLDERS[parts[0]].split(".") + parts[1:]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for folder in FOLDERS for p in (ROOT / folder).rglob("*.py")}


def _project_module(name):
    """The project module `name` refers to (a module, or the package holding a name)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _imported_modules(module, path):
    """Project modules `module` imports anywhere in its file (functions included), except
    under `if TYPE_CHECKING:` (annotations only, never executed)."""
    tree = ast.parse(path.read_text())
    type_only = {id(n) for node in ast.walk(tree)
                 if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
                 for stmt in node.body for n in ast.walk(stmt)}
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    for node in ast.walk(tree):
        if id(node) in type_only:
            continue
        if isinstance(node, ast.Import):
            for a in node.names:
                yield _project_module(a.name)
        elif isinstance(node, ast.ImportFrom):
            base = node.module if not node.level else ".".join(
                package[:len(package) - node.level + 1] + ([node.module] if node.module else []))
            for a in node.names:
                full = f"{base}.{a.name}"
                yield full if full in MODULES else _project_module(base)


def import_graph():
    return {m: {t for t in _imported_modules(m, p) if t and t != m} for m, p in MODULES.items()}


def cycles(graph):
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while not comp or comp[-1] != v:
                comp.append(stack.pop())
                on_stack.discard(comp[-1])
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_cycle_finder_finds_cycles():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_import_graph_sees_function_level_and_relative_imports():
    g = import_graph()
    assert "spu_lite.compiler.ir.printer" in g["spu_lite.compiler.ir.program"]  # relative
    assert "spu_lite.deploy.handles" in g["spu_lite.api"]              # inside a function


def test_no_import_cycles():
    assert cycles(import_graph()) == []
