"""The browser console ships inside the Python package: every file under console/static is
matched by a package-data glob in pyproject.toml (a file left out would be missing after
``pip install`` while every test run from the source tree still passed), and the page loads
nothing from another origin (no CDN, no runtime download)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
STATIC = ROOT / "console" / "static"


def test_every_static_file_is_package_data() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))
    globs = config["tool"]["setuptools"]["package-data"]["console"]
    console = ROOT / "console"
    shipped = {p for g in globs for p in console.glob(g) if p.is_file()}
    files = {p for p in STATIC.rglob("*") if p.is_file()}
    assert len(files) > 25
    assert sorted(str(p.relative_to(console)) for p in files - shipped) == []


def test_the_page_loads_only_its_own_files() -> None:
    html = (STATIC / "index.html").read_text("utf-8")
    sources = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert sources and all(s.startswith("/static/") or s == "data:," for s in sources), sources
    for js in (STATIC / "js").rglob("*.js"):
        text = js.read_text("utf-8")
        assert not re.search(r"https?://", text), js.name
        # ES module imports are relative: no bare specifiers a browser could not resolve
        for spec in re.findall(r'^import .* from "([^"]+)";', text, re.M):
            assert spec.startswith("./") or spec.startswith("../"), (js.name, spec)
