"""Pages whose numbers come from tables: a Markdown template with named numbers and tables, rendered from CSVs.

A template starts with a YAML front matter between two `---` lines:

    run: default                      # the table root's name (docs/tables/<run>/), for the provenance line
    numbers:
      relu_rho: {table: relu/figures/correlation.csv, where: {pair: kl_vs_auc}, column: spearman_r, format: .2f}
      relu_auc: {table: relu/nn/mia.csv, column: auc, stat: median, format: .3f}
    tables:
      headline:
        table: "{experiment}/figures/correlation.csv"
        for: {experiment: [relu, gelu]}
        header: ["| experiment | pair | ρ [95% CI] |", "|---|---|---|"]
        row: "| {experiment} | {pair} | {spearman_r:.2f} [{spearman_lo:.2f}, {spearman_hi:.2f}] |"
        labels: {pair: {kl_vs_auc: KL-LOOD vs MIA AUC}}

(a table's `where` filters its rows the same way), and its body says `{{relu_rho}}`, `{{table:headline}}`
and `{{provenance}}` where they go. `where` selects the
rows whose columns equal the given values (or compare: "> 0.99"); `stat` (median, mean, min, max, sum, count,
nunique) reduces the column over them, else exactly one row must match. A number with
`verdict: {lo: col, hi: col, above: text, below: text, across: text}` is words instead, chosen by where the
interval [lo, hi] of its row lies against 0, so a claim follows its table. A table may also `sort` (a column),
`descending`, keep its `head` rows and `join` them with a separator other than a new line (an inline list);
in its row template a column's dots become underscores ({tpr_at_0_01} for tpr_at_0.01) and an empty cell
prints as a dash.
Every table path is relative to the table root: docs/tables/<run>/ for the committed pages (copied from a
run's results/ by `snapshot`, with the config and commit that made them in PROVENANCE.yaml), or results/ itself
for a page about the user's own run. A missing table, row or column is an error naming the number.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from itertools import product
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from lood.errors import LoodInputError
from lood.io import atomic_path

PLACEHOLDER = re.compile(r"\{\{\s*(table:)?([A-Za-z0-9_]+)\s*\}\}")
STATS = {
    "median": np.median,
    "mean": np.mean,
    "min": np.min,
    "max": np.max,
    "sum": np.sum,
    "count": len,
    "nunique": lambda v: len(np.unique(v)),
}


def read_template(path: Path) -> tuple[dict, str]:
    """The front matter (a dict) and the body of a template.

    `include: other.md` (beside the template) takes the other template's numbers, tables and figures, so two
    pages that quote the same run define each number once; the template's own entries come on top.
    """
    text = Path(path).read_text()
    if not text.startswith("---\n"):
        raise LoodInputError(f"{path}: a page template starts with a '---' line and its YAML front matter")
    front, body = text[4:].split("\n---\n", 1)
    front = yaml.safe_load(front) or {}
    if "include" in front:
        base, _ = read_template(Path(path).parent / front.pop("include"))
        for key in ("numbers", "tables", "figures"):
            front[key] = base.get(key, {}) | front.get(key, {})
    return front, body


def _table(root: Path, name: str, where: str) -> pd.DataFrame:
    path = Path(root) / name
    if not path.exists():
        raise LoodInputError(f"{where}: table {path} does not exist (run the workflow, then snapshot it)")
    return pd.read_csv(path)


COMPARE = {">=": np.greater_equal, "<=": np.less_equal, "!=": np.not_equal, ">": np.greater, "<": np.less}


def _select(frame: pd.DataFrame, row: Mapping | None, where: str) -> pd.DataFrame:
    """Rows whose columns equal the given values; a value written "> 0.99" (or >=, <, <=, !=) compares instead."""
    for key, value in (row or {}).items():
        if key not in frame:
            raise LoodInputError(f"{where}: no column {key!r}; the table has {list(frame.columns)}")
        op = next((o for o in COMPARE if isinstance(value, str) and value.startswith(o)), None)
        if op:
            frame = frame[COMPARE[op](frame[key].to_numpy(dtype=float), float(value[len(op) :]))]
        else:
            frame = frame[frame[key] == value]
    return frame


class _Missing:
    """An empty cell: formats as a dash whatever the format spec."""

    def __format__(self, spec: str) -> str:
        return "–"


MISSING = _Missing()


def _is_nan(value) -> bool:
    return isinstance(value, float) and np.isnan(value)


def number(spec: Mapping, root: Path, name: str) -> str:
    """One named number, formatted as its spec says."""
    where = f"number {name!r}"
    frame = _select(_table(root, spec["table"], where), spec.get("where"), where)
    if "verdict" in spec:  # words chosen by where an interval lies: above 0, below 0, or across it
        lo, hi = (float(frame[spec["verdict"][k]].iloc[0]) for k in ("lo", "hi"))
        return spec["verdict"]["above" if lo > 0 else "below" if hi < 0 else "across"]
    column = spec["column"]
    if column not in frame:
        raise LoodInputError(f"{where}: no column {column!r} in {spec['table']}")
    values = frame[column].to_numpy()
    if "stat" in spec:
        value = STATS[spec["stat"]](values)
    elif len(values) == 1:
        value = values[0]
    else:
        raise LoodInputError(f"{where}: {len(values)} rows of {spec['table']} match {spec.get('where')}; need one")
    return format(value, spec.get("format", ""))


def table(spec: Mapping, root: Path, name: str) -> str:
    """A Markdown table: the header lines, then the row template on every matching row of every table."""
    keys = list(spec.get("for", {}))
    lines = list(spec.get("header", []))
    for combo in product(*(spec["for"][k] for k in keys)):
        bound = dict(zip(keys, combo, strict=True))
        frame = _select(_table(root, spec["table"].format(**bound), f"table {name!r}"), spec.get("where"), name)
        if "sort" in spec:
            frame = frame.sort_values(spec["sort"], ascending=not spec.get("descending", False), kind="stable")
        frame = frame.head(spec["head"]) if "head" in spec else frame
        for record in frame.to_dict("records"):
            for column, labels in spec.get("labels", {}).items():
                record[column] = labels.get(record[column], record[column])
            # a column named tpr_at_0.01 is {tpr_at_0_01} in the row template (a dot would read an attribute)
            fields = {k.replace(".", "_"): MISSING if _is_nan(v) else v for k, v in record.items()}
            lines.append(spec["row"].format(**(fields | bound)))
    return spec.get("join", "\n").join(lines)


def provenance_line(root: Path) -> str:
    """Which config and commit made the tables under root (its PROVENANCE.yaml), and how to regenerate them."""
    path = Path(root) / "PROVENANCE.yaml"
    if not path.exists():
        return f"Numbers rendered from the tables under `{root}`."  # a user's own results/
    p = yaml.safe_load(path.read_text())
    configs = " + ".join(f"`{c}`" for c in p["configs"])
    return (
        f"Every number on this page is rendered from the tables of one run: {configs} at commit `{p['commit']}`"
        f"{' (with uncommitted changes)' if p.get('dirty') else ''}, {p['date']}; tables in `{p['tables']}`. "
        f"After a new run, `{_renew(Path(p['tables']).name)}` renews them."
    )


def _renew(run: str) -> str:
    """The command that copies a new run's tables for the pages of `run` (docs/tables/<run>/) and renders them."""
    return "make docs-snapshot docs" if run == "default" else f"make docs-snapshot docs RUN={run}"


def render(template: Path, root: Path, shown_as: str | None = None) -> str:
    """The page of `template` with every placeholder replaced from the tables under `root`.

    `shown_as` names the template and the table root in the page (paths relative to the repository).
    """
    front, body = read_template(template)

    def fill(match: re.Match) -> str:
        is_table, name = bool(match.group(1)), match.group(2)
        if name == "provenance" and not is_table:
            return provenance_line(root)
        specs = front.get("tables" if is_table else "numbers", {})
        if name not in specs:
            raise LoodInputError(f"{template}: placeholder {match.group(0)} has no entry in the front matter")
        return (table if is_table else number)(specs[name], root, name)

    note = (
        f"<!-- Generated from {shown_as or Path(template).name} by `make docs`: edit the template, not this file. -->\n"
    )
    return note + PLACEHOLDER.sub(fill, body)


def tables_used(template: Path) -> set[str]:
    """Paths (relative to the table root) of every table a template reads."""
    front, _ = read_template(template)
    used = {spec["table"] for spec in front.get("numbers", {}).values()}
    for spec in front.get("tables", {}).values():
        keys = list(spec.get("for", {}))
        for combo in product(*(spec["for"][k] for k in keys)):
            used.add(spec["table"].format(**dict(zip(keys, combo, strict=True))))
    return used


def figures_used(template: Path) -> dict[str, str]:
    """The figures a template shows: {path under docs/figures/: path under the run's results/}."""
    front, _ = read_template(template)
    return dict(front.get("figures", {}))


def snapshot(
    templates: Sequence[Path], results: Path, dest: Path, figures: Path, configs: Sequence[str], repo: Path
) -> list[str]:
    """Copy every table the templates read from a run's results/ to dest (with PROVENANCE.yaml) and every figure
    they show to `figures`; returns the table paths copied."""
    used = sorted(set().union(*(tables_used(t) for t in templates)))
    shown = {k: v for t in templates for k, v in figures_used(t).items()}
    missing = [u for u in [*used, *shown.values()] if not (Path(results) / u).exists()]
    if missing:
        raise LoodInputError(f"the run under {results} lacks {missing}: run the workflow that makes them first")
    dest = Path(dest)
    if dest.exists():
        shutil.rmtree(dest)
    for u in used:
        (dest / u).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(Path(results) / u, dest / u)
    for name, source in shown.items():
        (Path(figures) / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(Path(results) / source, Path(figures) / name)
    git = ["git", "-C", str(repo)]
    commit = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    dirty = bool(
        subprocess.run(
            [
                *git,
                "status",
                "--porcelain",
                "--",
                "lood",
                "workflow_scripts",
                "rules",
                "Snakefile",
                "config.yaml",
                "schemas",
            ],
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    info = {
        "configs": list(configs),
        "commit": commit or "unknown",
        "dirty": dirty,
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "tables": str(
            dest.resolve().relative_to(Path(repo).resolve())
            if dest.resolve().is_relative_to(Path(repo).resolve())
            else dest
        ),
    }
    with atomic_path(dest / "PROVENANCE.yaml") as tmp:
        tmp.write_text(yaml.safe_dump(info, sort_keys=False))
    return used


def write(page: Path, text: str) -> None:
    """Write a rendered page atomically."""
    with atomic_path(page) as tmp:
        tmp.write_text(text)
