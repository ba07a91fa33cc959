"""Dependencies point one way: spu_lite -> compiler; spu_lite -> runtime -> compiler.ir."""
import ast
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _imports(pkg):
    for path in (ROOT / pkg).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                yield path, node.module
            elif isinstance(node, ast.Import):
                for a in node.names:
                    yield path, a.name


def test_runtime_imports_neither_frontend_nor_compiler_passes():
    bad = [(str(p.relative_to(ROOT)), m) for p, m in _imports("runtime")
           if m.startswith("spu_lite") or (m.startswith("compiler") and not m.startswith("compiler.ir"))]
    assert bad == []


def test_compiler_imports_nothing_of_ours_but_itself():
    bad = [(str(p.relative_to(ROOT)), m) for p, m in _imports("compiler")
           if m.split(".")[0] in ("spu_lite", "runtime")]
    assert bad == []


def test_modules_stay_small():
    big = [(str(p.relative_to(ROOT)), n) for pkg in ("spu_lite", "compiler", "runtime")
           for p in (ROOT / pkg).rglob("*.py") if (n := len(p.read_text().splitlines())) > 450]
    assert big == [], "split these modules: one idea per file"


# ---- no import cycles, function-level imports included ---------------------------------
PACKAGES = ("spu_lite", "compiler", "runtime")


def _module_name(path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")}


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
    assert "compiler.ir.printer" in g["compiler.ir.program"]          # top level, relative
    assert "spu_lite.deploy.handles" in g["spu_lite.api"]              # inside a function


def test_no_import_cycles():
    assert cycles(import_graph()) == []
