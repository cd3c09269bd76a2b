"""The package's shape: empty sub-package faces, figures without torch or JAX, modules a reader can hold."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = sorted(p.parent for p in (ROOT / "lood").glob("*/__init__.py"))


def test_sub_package_faces_are_empty():
    """Rules run in separate environments: importing a sub-package must import nothing of its own."""
    for face in [ROOT / "lood" / "__init__.py", *(p / "__init__.py" for p in PACKAGES)]:
        code = [line for line in face.read_text().splitlines() if line.strip() and not line.lstrip().startswith("#")]
        body = "\n".join(code)
        assert "import" not in body, f"{face.relative_to(ROOT)} imports: {body}"


@pytest.mark.parametrize("package", ["figures", "data", "slurm", "runtime"])
def test_light_sub_packages_load_neither_torch_nor_jax(package):
    modules = [f"lood.{package}.{p.stem}" for p in sorted((ROOT / "lood" / package).glob("[!_]*.py"))]
    code = f"import sys; import {', '.join(modules)}; print(sorted({{'torch', 'jax'}} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT).stdout
    assert out.strip() == "[]", f"lood.{package} loads {out.strip()}"


def test_no_module_past_350_lines():
    long = {
        str(p.relative_to(ROOT)): n
        for p in (ROOT / "lood").rglob("*.py")
        if (n := len(p.read_text().splitlines())) > 350
    }
    assert not long, long


def test_code_names_no_ticket():
    pattern = re.compile(r"\bissues? +\d", re.IGNORECASE)  # upstream tickets are written "#1234"
    places = [ROOT / "lood", ROOT / "workflow_scripts", ROOT / "rules", ROOT / "Snakefile"]
    files = [f for p in places for f in ([p] if p.is_file() else p.rglob("*")) if f.suffix in (".py", ".smk", "")]
    hits = [
        f"{f.relative_to(ROOT)}:{i}"
        for f in files
        if f.is_file()
        for i, line in enumerate(f.read_text().splitlines(), 1)
        if pattern.search(line)
    ]
    assert not hits, hits
