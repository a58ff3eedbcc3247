"""geopre's modules import each other without circles.

The graph is read from the source with ``ast``: every ``import``/``from ... import`` counts, at
module level AND inside functions (a function-level import only hides a circle until the function
runs; it does not remove it). ``from geopre.a import b`` is an edge to ``geopre.a.b`` when that is a
module, else to ``geopre.a``; a package's ``__init__`` is not added to every import of its children.
"""

import ast
from pathlib import Path

import geopre

PACKAGE_DIR = Path(geopre.__file__).parent

# Circles tolerated for now, each one circle's set of modules; an entry must say why. None today.
ALLOWED: list[set[str]] = []


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path, name: str, modules: set[str]) -> set[str]:
    """The geopre modules that ``path`` (module ``name``) imports, anywhere in its body."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the package, one level up per extra dot
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in modules:  # `import geopre.a.b.c` where c is an attribute
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def import_graph() -> dict[str, set[str]]:
    paths = {module_name(p): p for p in sorted(PACKAGE_DIR.rglob("*.py"))}
    return {name: imported_modules(path, name, set(paths)) for name, path in paths.items()}


def circles(graph: dict[str, set[str]]) -> list[set[str]]:
    """The groups of modules that import each other, directly or not: the strongly connected
    components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(component)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return components


def shortest_circle(graph: dict[str, set[str]], component: set[str]) -> list[str]:
    """A shortest path from the component's first module back to itself (breadth first)."""
    start = min(component)
    paths = {nxt: [start, nxt] for nxt in sorted(graph[start]) if nxt in component}
    queue = list(paths)
    while queue:
        node = queue.pop(0)
        if node == start:
            return paths[node]
        for nxt in sorted(graph[node] & component):
            if nxt not in paths:
                paths[nxt] = paths[node] + [nxt]
                queue.append(nxt)
    raise AssertionError(f"{component} is not strongly connected")


def test_the_graph_sees_module_and_function_level_imports():
    graph = import_graph()
    assert "geopre.errors" in graph["geopre.shards.sources"]  # module level
    assert "geopre.ingest.ray_distributor" in graph["geopre.ingest.pipeline"]  # inside distributor()


def test_circles_finds_a_circle_and_its_path():
    graph = {"a": {"b"}, "b": {"c", "e"}, "c": {"a", "d"}, "d": set(), "e": {"b"}}
    assert circles(graph) == [{"a", "b", "c", "e"}]
    assert shortest_circle(graph, {"a", "b", "c", "e"}) == ["a", "b", "c", "a"]
    assert circles({"a": {"b"}, "b": set()}) == []


def test_geopre_has_no_import_circles():
    graph = import_graph()
    found = [shortest_circle(graph, group) for group in circles(graph) if group not in ALLOWED]
    assert not found, "import circles:\n" + "\n".join(" -> ".join(circle) for circle in found)
