"""One home for every default and enum: the schema. fill_defaults agrees with Snakemake's filler,
every settings object builds from the schema's defaults alone, and no package function carries a
default of its own for a setting."""

from __future__ import annotations

import copy
import importlib
import inspect
import pkgutil
from dataclasses import fields

import yaml
from snakemake.utils import validate

import lood
from lood import config, settings
from lood.config import fill_defaults

from conftest import ROOT

SCHEMA = ROOT / "schemas" / "config.schema.yaml"


def schema_properties(section: str) -> dict:
    return config.schema()["properties"][section]["properties"]


def sparse_config() -> dict:
    """The default config with every key that has a schema default removed."""
    c = yaml.safe_load((ROOT / "config.yaml").read_text())
    for section, value in list(c.items()):
        if not isinstance(value, dict) or section not in config.schema()["properties"]:
            continue
        props = config.schema()["properties"][section].get("properties", {})
        for key in list(value):
            if "default" in props.get(key, {}):
                del value[key]
    return c


def test_matches_snakemake_validate_defaults():
    ours, theirs = sparse_config(), sparse_config()
    fill_defaults(ours, SCHEMA)
    validate(theirs, str(SCHEMA))
    assert ours == theirs
    assert ours["data"]["url"].endswith("cifar-10-python.tar.gz")


def test_given_values_win_and_experiments_get_nested_defaults():
    c = sparse_config()
    c["mia"] = {"splits": 7}
    c["experiments"]["wide"] = {"width": 512}
    before = copy.deepcopy(c["experiments"])
    fill_defaults(c, SCHEMA)
    assert c["mia"]["splits"] == 7
    assert c["experiments"] == before  # experiment overrides have no defaults: nothing added


def test_every_settings_object_builds_from_the_schema_defaults_alone():
    c = sparse_config()
    fill_defaults(c, SCHEMA)
    for section, cls in settings.SECTIONS.items():
        obj = cls.from_config(c[section])
        # Each field is a schema key of that section, and the value is what the config gives.
        for f in fields(cls):
            assert f.name in schema_properties(section), f"{cls.__name__}.{f.name} is not a key of {section}"
            assert f.default is inspect.Parameter.empty or f.default.__class__.__name__ == "_MISSING_TYPE"
            assert getattr(obj, f.name) == config._frozen(c[section][f.name])
    arch = settings.Arch.from_config({**c["model"], **c["experiments"]["relu"]})
    assert arch.activation == "relu"


def test_from_schema_is_the_filled_section_with_overrides():
    """Benchmarks and tests build settings by Section.from_schema: the schema's defaults, then their own values."""
    given = {"n_in": 3, "n_out": 4, "epochs": 2, "batch_size": 8, "lr": 0.5}  # keys config.yaml sets
    c = fill_defaults({"mia": {}, "training": dict(given)}, SCHEMA)
    assert settings.MIASettings.from_schema() == settings.MIASettings.from_config(c["mia"])
    assert settings.Training.from_schema(**given) == settings.Training.from_config(c["training"])


# Names a function may default although a setting shares them: `device` is the machine a function computes on
# (train_models, influence_table, matmul_rate take the detected one), not a fact of the experiment; the setting
# audit.device chooses it for the audit rule alone.
MACHINE_NAMES = {"device"}


def setting_names() -> set[str]:
    names = {f.name for cls in settings.SECTIONS.values() for f in fields(cls)}
    return (names | {f.name for f in fields(settings.Arch)}) - MACHINE_NAMES


def test_no_package_function_has_a_default_for_a_setting():
    """A keyword default named like a setting would be a second home for that default."""
    names, offenders = setting_names(), []
    for info in pkgutil.walk_packages(lood.__path__, "lood."):
        module = importlib.import_module(info.name)
        for fname, fn in inspect.getmembers(module, inspect.isfunction):
            if fn.__module__ != module.__name__:
                continue
            for p in inspect.signature(fn).parameters.values():
                if p.name in names and p.default is not inspect.Parameter.empty:
                    offenders.append(f"{module.__name__}.{fname}({p.name}={p.default!r})")
    assert not offenders, f"defaults outside the schema: {offenders}"


def test_enums_have_one_home():
    """Lists of allowed values in the package are the schema's enums."""
    from lood.analytic.kernel import ACTIVATIONS

    assert tuple(ACTIVATIONS) == config.enum("activation")
    assert config.schema()["properties"]["model"]["properties"]["activation"] == {"$ref": "#/$defs/activation"}


# config.yaml's own facts about the default experiment: values that deliberately differ from the
# schema's generic defaults. Every other key config.yaml shows (for its comments) must equal the default.
EXPERIMENT_FACTS = {("data", "classes"), ("data", "n_records"), ("figures", "activation")}


def test_config_yaml_restates_no_default_differently():
    """A key shown in config.yaml with another value than the schema's default would be a second home for it."""
    c = yaml.safe_load((ROOT / "config.yaml").read_text())
    filled = fill_defaults(sparse_config(), SCHEMA)
    drift = [
        f"{section}.{key}: config.yaml {value!r}, schema default {filled[section][key]!r}"
        for section, values in c.items()
        if isinstance(values, dict) and section in config.schema()["properties"]
        for key, value in values.items()
        if (section, key) not in EXPERIMENT_FACTS
        and key in filled.get(section, {})
        and key not in sparse_config()[section]
        and value != filled[section][key]
    ]
    assert not drift, drift
