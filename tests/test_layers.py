"""The package's layering, checked on the source: loading a config imports no model library, no
module imports itself back through others (top-level imports), none is over 400 lines, and every
module docs/architecture.md names exists."""
import ast
import re
import subprocess
import sys

from tests.helpers import REPO

PACKAGE = REPO / "longrag"
HEAVY = ("torch", "transformers", "faiss")


def _modules() -> dict[str, tuple[ast.Module, bool]]:
    """Dotted name → (syntax tree, is a package)."""
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(REPO).with_suffix("").parts
        package = parts[-1] == "__init__"
        out[".".join(parts[:-1] if package else parts)] = (ast.parse(path.read_text(encoding="utf-8")), package)
    return out


def _imports(name: str, modules) -> set[str]:
    """longrag modules imported when `name` loads: its top-level imports (not under `if TYPE_CHECKING`),
    less its own parent packages (already loading when it does)."""
    tree, is_package = modules[name]
    package = name if is_package else name.rsplit(".", 1)[0]
    found = set()
    for node in tree.body:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            continue
        for sub in node.body if isinstance(node, ast.Try) else [node]:
            if isinstance(sub, ast.Import):
                found |= {a.name for a in sub.names}
            elif isinstance(sub, ast.ImportFrom):
                base = sub.module or ""
                if sub.level:
                    parts = package.split(".")
                    base = ".".join(parts[: len(parts) - sub.level + 1] + ([sub.module] if sub.module else []))
                found.add(base)
                found |= {f"{base}.{a.name}" for a in sub.names if f"{base}.{a.name}" in modules}
    return {m for m in found if m in modules and m != name and not name.startswith(m + ".")}


def test_loading_a_config_imports_no_model_library():
    code = ("import sys; from longrag.config import load_config; load_config({'ask': {'budget': 512}}); "
            f"print(sorted(set({HEAVY!r}) & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]", f"longrag.config pulled in {out.strip()}: it must stay below the stages"


def test_no_import_cycles():
    modules = _modules()
    graph = {name: _imports(name, modules) for name in modules}
    index, low, stack, on_stack, cycles = {}, {}, [], set(), []

    def visit(node):  # Tarjan's strongly connected components
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    sys.setrecursionlimit(10_000)
    for name in graph:
        if name not in index:
            visit(name)
    assert cycles == [], f"import cycles: {cycles}"


def test_no_module_over_400_lines():
    long = {str(p.relative_to(REPO)): n for p in PACKAGE.rglob("*.py")
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > 400}
    assert long == {}, f"split these modules: {long}"


def test_every_module_the_architecture_names_exists():
    text = (REPO / "docs" / "architecture.md").read_text(encoding="utf-8")
    named = set(re.findall(r"`((?:[a-z_]+/)*[a-z_0-9]+\.py)`", text))
    assert len(named) > 20  # the page names the modules, in backticks
    everywhere = {p.name for p in PACKAGE.rglob("*.py")}
    missing = sorted(n for n in named if not ((PACKAGE / n).exists() or (REPO / n).exists()  # a path, or a bare
                                              or ("/" not in n and n in everywhere)))  # name beside its folder
    assert missing == [], f"docs/architecture.md names modules that do not exist: {missing}"
