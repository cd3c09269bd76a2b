"""The config schema (schemas/config.schema.yaml): its enums, its defaults filled in every process, and `Section`,
the frozen dataclass a config section becomes (lood.settings holds one per section).

Snakemake's `validate(..., set_default=True)` is skipped inside cluster jobs since
9.5 (snakemake issues #3614, #3921), so a SLURM job would miss every default the
schema supplies. `fill_defaults` does the same filling without validating, and
the Snakefile calls it after `validate` on every run, local or remote.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import yaml

from lood.errors import LoodInputError


def _resolve(schema: dict, root: dict) -> dict:
    """Follow a local `$ref` ("#/a/b") to the schema it names."""
    while "$ref" in schema:
        node: Any = root
        for part in schema["$ref"].removeprefix("#/").split("/"):
            node = node[part]
        schema = {**node, **{k: v for k, v in schema.items() if k != "$ref"}}
    return schema


def _fill(value: Any, schema: dict, root: dict) -> None:
    schema = _resolve(schema, root)
    if not isinstance(value, dict):
        return
    properties = schema.get("properties", {})
    for key, sub in properties.items():
        sub = _resolve(sub, root)
        if key not in value and "default" in sub:
            value[key] = sub["default"]
        if key in value:
            _fill(value[key], sub, root)
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict):
        for key in value.keys() - properties.keys():
            _fill(value[key], extra, root)


def fill_defaults(config: dict, schema_path: str | Path) -> dict:
    """Insert the schema's defaults for keys absent from `config` (in place, nested); return it."""
    schema = yaml.safe_load(Path(schema_path).read_text())
    _fill(config, schema, schema)
    return config


SCHEMA_PATH = Path(__file__).resolve().parents[1] / "schemas" / "config.schema.yaml"


@functools.cache
def schema() -> dict:
    """The config schema, parsed once."""
    return yaml.safe_load(SCHEMA_PATH.read_text())


@functools.cache
def enum(name: str) -> tuple[str, ...]:
    """The allowed values of the schema's enum `$defs/<name>` (e.g. activation, loss)."""
    try:
        return tuple(schema()["$defs"][name]["enum"])
    except KeyError:
        raise KeyError(f"the schema has no enum $defs/{name}") from None


def check_choice(value: str, name: str, key: str) -> str:
    """`value` if it is one of the schema's enum `name`, else a LoodInputError naming `key`."""
    allowed = enum(name)
    if value not in allowed:
        raise LoodInputError(f"{key} {value!r} unknown; allowed: {', '.join(allowed)}")
    return value


def check_auto(value: float | str, key: str) -> None:
    """A LoodInputError naming `key` unless `value` is a positive number or "auto"."""
    if value == "auto":
        return
    if isinstance(value, str) or isinstance(value, bool) or not value > 0:
        raise LoodInputError(f"{key} must be a positive number or auto, got {value!r}")


# ----------------------------------------------------------------------------- sections as typed settings

S = TypeVar("S", bound="Section")


def _frozen(value: Any) -> Any:
    """Lists become tuples so that settings are hashable."""
    if isinstance(value, list):
        return tuple(_frozen(v) for v in value)
    return value


@dataclass(frozen=True)
class Section:
    """A config section as a frozen dataclass; SECTION (its config key) names it in error messages."""

    SECTION: ClassVar[str] = ""

    @classmethod
    def from_config(cls: type[S], section: Mapping[str, Any], name: str | None = None) -> S:
        """Build from a config section; every field must be present (defaults come from the schema)."""
        names = [f.name for f in fields(cls)]
        missing = [k for k in names if k not in section]
        if missing:
            where = name or cls.__name__
            raise LoodInputError(f"config section {where} lacks {missing}; fill the schema's defaults first")
        return cls(**{k: _frozen(section[k]) for k in names})

    @classmethod
    def from_schema(cls: type[S], **overrides: Any) -> S:
        """The schema's defaults for this section, with `overrides` (for benchmarks and tests)."""
        name = cls.SECTION  # the config key, set by lood.settings for every section class it registers
        return cls.from_config(fill_defaults({name: dict(overrides)}, SCHEMA_PATH)[name], name)
