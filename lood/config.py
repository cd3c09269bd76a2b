"""Config defaults from the JSON schema, filled in every process that reads the config.

Snakemake's `validate(..., set_default=True)` is skipped inside cluster jobs since
9.5 (snakemake issues #3614, #3921), so a SLURM job would miss every default the
schema supplies. `fill_defaults` does the same filling without validating, and
the Snakefile calls it after `validate` on every run, local or remote.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


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
