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
