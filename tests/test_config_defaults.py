"""fill_defaults agrees with Snakemake's validating default-filler, without validating."""

from __future__ import annotations

import copy

import yaml
from snakemake.utils import validate

from conftest import ROOT
from lood.config import fill_defaults

SCHEMA = ROOT / "schemas" / "config.schema.yaml"


def sparse_config() -> dict:
    """The default config with every key that has a schema default removed."""
    c = yaml.safe_load((ROOT / "config.yaml").read_text())
    for section in ("training", "nngp", "query", "influence", "figures", "mia"):
        for key in list(c[section]):
            if key not in {"n_in", "n_out", "epochs", "batch_size", "lr", "sigma2"}:
                del c[section][key]
    del c["data"]["classes"], c["data"]["n_records"]
    return c


def test_matches_snakemake_validate_defaults():
    ours, theirs = sparse_config(), sparse_config()
    fill_defaults(ours, SCHEMA)
    validate(theirs, str(SCHEMA))
    assert ours == theirs
    assert ours["query"]["steps"] == 200 and ours["data"]["url"].endswith("cifar-10-python.tar.gz")


def test_given_values_win_and_experiments_get_nested_defaults():
    c = sparse_config()
    c["mia"]["splits"] = 7
    c["experiments"]["wide"] = {"width": 512}
    before = copy.deepcopy(c["experiments"])
    fill_defaults(c, SCHEMA)
    assert c["mia"]["splits"] == 7
    assert c["experiments"] == before  # experiment overrides have no defaults: nothing added


def test_package_influence_defaults_match_the_schema():
    from lood.influence import INFLUENCE_DEFAULTS

    c = sparse_config()
    fill_defaults(c, SCHEMA)
    assert c["influence"] == INFLUENCE_DEFAULTS
