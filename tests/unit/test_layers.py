"""The layers point one way and no modules import each other in a circle (DESIGN.md, Layout).

An AST scan of every import in the project's packages, including imports under
``TYPE_CHECKING`` and inside functions: a lazy import still couples the two modules, so it counts.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

from flows.graph import cycles

ROOT = Path(__file__).resolve().parents[2]

BOTTOM = {"core", "audio", "storage", "tabular"}
LIBRARIES = {"engine", "flows", "asr", "speaker_id", "compliance"}
# What each top-level package may import besides itself. Nothing imports app.
ALLOWED: dict[str, set[str]] = {
    "audio": set(),
    "core": {"audio"},
    "storage": {"core"},
    "tabular": {"core"},
    **{lib: BOTTOM for lib in LIBRARIES},
    "notify": BOTTOM | LIBRARIES,
    "inspection": BOTTOM | LIBRARIES,
    "campaigns": BOTTOM | LIBRARIES | {"notify"},
    "console": BOTTOM | LIBRARIES | {"notify", "inspection", "campaigns"},
    "app": BOTTOM | LIBRARIES | {"notify", "inspection", "campaigns", "console"},
}
PACKAGES = sorted(p for p in ALLOWED if (ROOT / p).is_dir())


def _modules() -> dict[str, Path]:
    out: dict[str, Path] = {}
    for pkg in PACKAGES:
        for path in (ROOT / pkg).rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = path
    return out


def _native_modules() -> set[str]:
    """C extension modules (a C file with its ``PyInit_``): leaves that import no module of the
    project, so an import of one is an import of it, not of its package."""
    out = set()
    for pkg in PACKAGES:
        for path in (ROOT / pkg).rglob("*.c"):
            if f"PyInit_{path.stem}(" in path.read_text():
                out.add(".".join(path.relative_to(ROOT).with_suffix("").parts))
    return out


MODULES = _modules()
NATIVE = _native_modules()


def _resolve(name: str) -> str | None:
    """The project module an import names (``a.b.c`` -> the longest existing prefix)."""
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in MODULES or candidate in NATIVE:
            return candidate
        parts.pop()
    return None


def _imports(module: str, path: Path) -> Iterator[tuple[str, int]]:
    tree = ast.parse(path.read_text(), str(path))
    is_package = path.name == "__init__.py"
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                target = _resolve(alias.name)
                if target is not None:
                    yield target, node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".")
                anchor = anchor[: len(anchor) - node.level + (1 if is_package else 0)]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                target = _resolve(f"{base}.{alias.name}") or _resolve(base)
                if target is not None:
                    yield target, node.lineno


GRAPH: dict[str, dict[str, int]] = {
    mod: {t: line for t, line in _imports(mod, path) if t != mod} for mod, path in MODULES.items()
}


def test_the_scan_sees_the_project() -> None:
    assert {"core.call", "audio.pcm", "engine.sipcall", "flows.interpreter", "app.wiring"} <= set(
        MODULES)
    assert "core.call" in GRAPH["flows.interpreter"]  # the scan reads real imports
    assert "compliance._wordscan" in GRAPH["compliance.native"]  # and the native module


def test_layers_point_one_way() -> None:
    wrong = []
    for mod, targets in GRAPH.items():
        pkg = mod.split(".")[0]
        for target, line in targets.items():
            tpkg = target.split(".")[0]
            if tpkg != pkg and tpkg not in ALLOWED[pkg]:
                wrong.append(f"{MODULES[mod].relative_to(ROOT)}:{line} imports {target}")
    assert not wrong, "imports against the layers:\n" + "\n".join(sorted(wrong))


def _cycles() -> list[list[str]]:
    """Import circles: strongly connected components of more than one module (the flows
    validator's own iterative Tarjan, which must be right for flows as well)."""
    return [c for c in cycles(GRAPH, GRAPH) if len(c) > 1]


def test_no_import_circles() -> None:
    cycles = _cycles()
    assert not cycles, "modules that import each other:\n" + "\n".join(
        " <-> ".join(c) for c in cycles)


def test_cycle_finder_finds_a_cycle() -> None:
    """The finder must be able to fail: a made-up circle is reported."""
    saved = dict(GRAPH)
    try:
        GRAPH["audio.pcm"] = {**GRAPH["audio.pcm"], "audio.wavio": 1}
        assert any({"audio.pcm", "audio.wavio"} <= set(c) for c in _cycles())
    finally:
        GRAPH.clear()
        GRAPH.update(saved)
