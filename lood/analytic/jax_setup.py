"""JAX and neural-tangents, imported once with the process-wide settings the analytic side needs.

Importing this module is the one place where global state changes:
- a stub stands in for `neural_tangents.experimental`, which imports TensorFlow (1.9 GB,
  +3.5 s per import) and which this package never uses;
- JAX runs in float64 (`jax_enable_x64`): the GP algebra is float64 throughout (docs/math.md §2);
- JAX's INFO messages about accelerator backends it probes and does not find are silenced.
"""

from __future__ import annotations

import logging
import sys
import types
import warnings

sys.modules.setdefault("neural_tangents.experimental", types.ModuleType("neural_tangents.experimental"))

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)
logging.getLogger("jax._src.xla_bridge").setLevel(logging.WARNING)

import jax.numpy as jnp  # noqa: E402

with warnings.catch_warnings():  # neural-tangents 0.6.5 imports names that jax 0.5 deprecates
    warnings.simplefilter("ignore", DeprecationWarning)
    from neural_tangents import stax  # noqa: E402

__all__ = ["jax", "jnp", "stax"]
