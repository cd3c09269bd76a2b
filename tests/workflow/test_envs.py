"""Each rule's conda environment provides every third-party module its script imports.

For every rule with a `conda:` env and a `script:`, the script's imports are followed through
the package: module-level imports of each `lood` module it reaches, and the imports inside
the `_common` helpers it calls (they run at the script's top level). Lazy imports inside
package functions are left out: a rule that calls such a function states the need in its env
by hand, and the rules' own tests run them. The env files are read as they are written.
"""

from __future__ import annotations

import ast
import re
import sys
from functools import cache
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
# import name -> the distribution that provides it, as written in the env files
DISTRIBUTION = {
    "sklearn": "scikit-learn",
    "yaml": "pyyaml",
    "PIL": "pillow",
    "neural_tangents": "neural-tangents",
}
# What a distribution brings along, so that its import names need no line of their own.
BRINGS = {"matplotlib": {"pillow"}, "jax": {"jaxlib"}}


def rules() -> list[tuple[str, str, str]]:
    """(rule, env file, script file) of every rule with both a conda: and a script: directive."""
    out = []
    for smk in sorted((ROOT / "rules").glob("*.smk")):
        for block in re.split(r"^rule ", smk.read_text(), flags=re.M)[1:]:
            name = block.split(":", 1)[0].strip()
            env = re.search(r"^\s+conda:\s*\n\s+\"([^\"]+)\"", block, flags=re.M)
            script = re.search(r"^\s+script:\s*\n\s+\"([^\"]+)\"", block, flags=re.M)
            if env and script:
                out.append((name, (smk.parent / env.group(1)).resolve(), (smk.parent / script.group(1)).resolve()))
    return out


def _imports(nodes) -> set[str]:
    names = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
            names |= {f"{node.module}.{a.name}" for a in node.names}
    return names


def _top_level(tree: ast.Module) -> list[ast.stmt]:
    """Statements run at import: the module's body, with the bodies of if/try/with blocks, not of functions."""
    out, todo = [], list(tree.body)
    while todo:
        node = todo.pop()
        out.append(node)
        if isinstance(node, ast.If | ast.Try | ast.With):
            for field in ("body", "orelse", "finalbody", "handlers"):
                todo.extend(getattr(node, field, []))
        if isinstance(node, ast.ExceptHandler):
            todo.extend(node.body)
    return out


@cache
def _package_module(name: str) -> Path | None:
    path = ROOT / (name.replace(".", "/") + ".py")
    return path if path.exists() else None


def _common_imports(names: set[str]) -> set[str]:
    """Imports inside the _common helpers named, and inside the _common helpers they call."""
    tree = ast.parse((ROOT / "workflow_scripts" / "_common.py").read_text())
    funcs = {f.name: f for f in tree.body if isinstance(f, ast.FunctionDef)}
    seen, todo, found = set(), [n for n in names if n in funcs], _imports(_top_level(tree))
    while todo:
        f = funcs[todo.pop()]
        if f.name in seen:
            continue
        seen.add(f.name)
        found |= _imports(ast.walk(f))
        todo += [c.func.id for c in ast.walk(f) if isinstance(c, ast.Call) and isinstance(c.func, ast.Name)]
        todo = [t for t in todo if t in funcs]
    return found


def third_party(script: Path) -> set[str]:
    """Top-level names of the third-party modules `script` imports when it runs, through the package."""
    tree = ast.parse(script.read_text())
    names = _imports(_top_level(tree))
    froms = [n for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module == "_common"]
    common = {a.name for n in froms for a in n.names}
    names |= _common_imports(common)
    seen, todo, found = set(), sorted(names), set()
    while todo:
        name = todo.pop()
        top = name.split(".")[0]
        if top == "lood":
            path = _package_module(name)
            if path is None or path in seen:
                continue
            seen.add(path)
            todo += sorted(_imports(_top_level(ast.parse(path.read_text()))))
            # a package module's own package faces run too
            todo += [".".join(name.split(".")[:k]) + ".__init__" for k in range(1, name.count(".") + 1)]
        elif top not in sys.stdlib_module_names and top not in ("_common", "snakemake", "__future__"):
            found.add(top)
    return found


def provided(env: Path) -> set[str]:
    """Distribution names an env file installs (conda or pip), lower case, without versions."""
    deps = yaml.safe_load(env.read_text())["dependencies"]
    flat = []
    for d in deps:
        flat += d["pip"] if isinstance(d, dict) else [d]
    names = {re.split(r"[=<>! ]", d.strip(), maxsplit=1)[0].lower() for d in flat}
    for name in list(names):
        names |= BRINGS.get(name, set())
    return names


RULES = rules()


def test_every_rule_with_a_script_and_an_env_is_checked():
    assert len(RULES) >= 30, RULES


@pytest.mark.parametrize("rule, env, script", RULES, ids=[r[0] for r in RULES])
def test_env_provides_what_the_script_imports(rule, env, script):
    need = {DISTRIBUTION.get(m, m).lower() for m in third_party(script)}
    missing = sorted(need - provided(env))
    assert not missing, f"rule {rule}: {env.name} lacks {missing}, imported by {script.name} through the package"


def test_the_check_sees_imports_through_the_package():
    """A planted chain: a script importing lood.analytic.kernel needs torch (the closed-form ReLU kernel)
    and jax (stax), the figure modules need matplotlib but neither torch nor jax."""
    kernel = ROOT / "workflow_scripts" / "nngp_lood.py"
    assert {"jax", "torch", "numpy"} <= third_party(kernel)
    plot = ROOT / "workflow_scripts" / "plot_correlation.py"
    assert "matplotlib" in third_party(plot) and not {"torch", "jax"} & third_party(plot)
