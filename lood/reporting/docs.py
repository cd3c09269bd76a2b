"""The repository's generated pages: which template renders which page from which run's tables.

`python -m lood.reporting.docs render` writes every page; `check` says which pages differ from what their
templates and tables give (the test suite runs it); `snapshot RUN [RESULTS]` copies a finished run's tables and
figures into docs/ for the pages of RUN. The registry is docs/src/pages.yaml.
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

from lood.errors import LoodInputError
from lood.reporting.pages import render, snapshot, write

ROOT = Path(__file__).resolve().parents[2]
REGISTRY = ROOT / "docs" / "src" / "pages.yaml"


def registry(path: Path = REGISTRY) -> dict:
    """{run: {tables, configs, pages: {template: page}}}, paths relative to the repository root."""
    return yaml.safe_load(Path(path).read_text())


def rendered(root: Path = ROOT, path: Path = REGISTRY) -> dict[Path, str]:
    """Every generated page's path and the text its template gives today."""
    out = {}
    for run in registry(path).values():
        for template, page in run["pages"].items():
            out[root / page] = render(root / template, root / run["tables"], template)
    return out


def stale(root: Path = ROOT, path: Path = REGISTRY) -> list[str]:
    """Pages whose text differs from their rendering (a number or a template changed without `render`)."""
    return [
        str(p.relative_to(root)) for p, text in rendered(root, path).items() if not p.exists() or p.read_text() != text
    ]


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("render", "check", "snapshot"):
        print("usage: python -m lood.reporting.docs render | check | snapshot RUN [RESULTS_DIR]", file=sys.stderr)
        return 2
    if argv[0] == "render":
        for page, text in rendered().items():
            write(page, text)
            print(f"rendered {page.relative_to(ROOT)}")
        return 0
    if argv[0] == "check":
        pages = stale()
        for page in pages:
            print(f"{page} is stale: run `make docs`", file=sys.stderr)
        return 1 if pages else 0
    runs = registry()
    if len(argv) < 2 or argv[1] not in runs:
        raise LoodInputError(f"snapshot needs a run of {REGISTRY.relative_to(ROOT)}: one of {sorted(runs)}")
    run = runs[argv[1]]
    results = Path(argv[2]) if len(argv) > 2 else ROOT / "results"
    templates = [ROOT / t for t in run["pages"]]
    copied = snapshot(templates, results, ROOT / run["tables"], ROOT / "docs" / "figures", run["configs"], ROOT)
    print(f"copied {len(copied)} tables of {results} to {run['tables']}; now `make docs`")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
