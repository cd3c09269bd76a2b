"""Pages rendered from tables: a changed number in a table changes the page; the committed pages are current."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from lood.errors import LoodInputError
from lood.reporting.docs import stale
from lood.reporting.pages import render, snapshot, tables_used

TEMPLATE = """---
run: planted
numbers:
  rho: {table: relu/correlation.csv, where: {pair: kl_vs_auc}, column: spearman_r, format: .2f}
  median_auc: {table: relu/mia.csv, column: auc, stat: median, format: .3f}
  above: {table: relu/mia.csv, where: {auc: "> 0.6"}, column: record, stat: count, format: d}
tables:
  top:
    table: "{experiment}/mia.csv"
    for: {experiment: [relu]}
    sort: auc
    descending: true
    head: 2
    row: "#{record}"
    join: ", "
  pairs:
    table: relu/correlation.csv
    header: ["| pair | ρ |", "|---|---|"]
    row: "| {pair} | {spearman_r:.2f} |"
    labels: {pair: {kl_vs_auc: KL vs AUC}}
---
{{provenance}}
ρ = {{rho}}, median {{median_auc}}, {{above}} above 0.6, top {{table:top}}.
{{table:pairs}}
"""


@pytest.fixture
def run(tmp_path: Path) -> tuple[Path, Path]:
    root = tmp_path / "results"
    (root / "relu").mkdir(parents=True)
    pd.DataFrame({"pair": ["kl_vs_auc", "other"], "spearman_r": [0.6149, 0.1]}).to_csv(
        root / "relu" / "correlation.csv", index=False
    )
    pd.DataFrame({"record": [3, 8, 5], "auc": [0.55, 0.91, 0.62]}).to_csv(root / "relu" / "mia.csv", index=False)
    template = tmp_path / "page.md"
    template.write_text(TEMPLATE)
    return template, root


def test_numbers_and_tables_come_from_the_tables(run):
    template, root = run
    text = render(template, root)
    assert "ρ = 0.61, median 0.620, 2 above 0.6, top #8, #5." in text
    assert "| KL vs AUC | 0.61 |\n| other | 0.10 |" in text
    assert text.startswith("<!-- Generated from")


def test_a_changed_number_in_a_table_changes_the_page(run):
    template, root = run
    before = render(template, root)
    table = pd.read_csv(root / "relu" / "correlation.csv")
    table.loc[0, "spearman_r"] = 0.7149
    table.to_csv(root / "relu" / "correlation.csv", index=False)
    after = render(template, root)
    assert before != after and "ρ = 0.71" in after and "| KL vs AUC | 0.71 |" in after


def test_a_missing_table_or_row_names_the_number(run):
    template, root = run
    (root / "relu" / "mia.csv").unlink()
    with pytest.raises(LoodInputError, match="number 'median_auc': table .*mia.csv does not exist"):
        render(template, root)
    template.write_text(TEMPLATE.replace("where: {pair: kl_vs_auc}", "where: {pair: absent}"))
    pd.DataFrame({"record": [3], "auc": [0.5]}).to_csv(root / "relu" / "mia.csv", index=False)
    with pytest.raises(LoodInputError, match="number 'rho': 0 rows"):
        render(template, root)


def test_snapshot_copies_exactly_the_tables_used_with_provenance(run, tmp_path):
    template, root = run
    (root / "relu" / "unused.csv").write_text("a\n1\n")
    dest = tmp_path / "docs" / "tables" / "planted"
    copied = snapshot([template], root, dest, tmp_path / "figs", ["config.yaml"], Path(__file__).parent)
    assert sorted(copied) == sorted(tables_used(template)) == ["relu/correlation.csv", "relu/mia.csv"]
    assert not (dest / "relu" / "unused.csv").exists()
    text = render(template, dest)
    assert "ρ = 0.61" in text and "`config.yaml` at commit" in text


def test_the_committed_pages_are_what_their_templates_and_tables_give():
    """README.md and docs/results.md are generated (docs/src/pages.yaml): a number typed into them by hand, or a
    table renewed without `make docs`, fails here."""
    assert stale() == []


def test_a_verdict_follows_its_interval(tmp_path):
    """Words chosen by an interval: a claim typed by hand would outlive a changed table, a verdict does not."""
    (tmp_path / "t").mkdir()
    template = tmp_path / "v.md"
    template.write_text(
        "---\nnumbers:\n  v: {table: t/d.csv, verdict: {lo: lo, hi: hi, above: ahead, below: behind, across: tie}}\n"
        "---\n{{v}}\n"
    )
    for lo, hi, word in [(-0.1, 0.2, "tie"), (0.05, 0.3, "ahead"), (-0.3, -0.01, "behind")]:
        pd.DataFrame({"lo": [lo], "hi": [hi]}).to_csv(tmp_path / "t" / "d.csv", index=False)
        assert render(template, tmp_path).endswith(f"{word}\n")
