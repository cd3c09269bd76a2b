from lood.runtime.openblas import use_safe_core

from _common import setup

use_safe_core()  # OpenBLAS reads OPENBLAS_CORETYPE once, when NumPy loads it: before any numeric import

import json  # noqa: E402

from lood.empirical.step_size import resolved  # noqa: E402
from lood.io import atomic_path, load_npz, save_csv  # noqa: E402
from lood.settings import Arch, AuditSettings, NNGPSettings, Training  # noqa: E402
from lood.studies import audit_memory  # noqa: E402
from lood.studies.audit import audit  # noqa: E402

log = setup(snakemake)
dataset = load_npz(snakemake.input.dataset)
lr = snakemake.input.get("lr")
result = audit(
    dataset["X"],
    dataset["y"],
    Arch.from_config(snakemake.params.arch),
    NNGPSettings.from_config(snakemake.params.nngp),
    AuditSettings.from_config(snakemake.params.audit),
    snakemake.threads,
    audit_memory.available_bytes(),
    log,
    resolved(Training.from_config(snakemake.params.training), lr) if lr else None,
    snakemake.params.seed,
)
save_csv(snakemake.output.lood_all, result.table)
with atomic_path(snakemake.output.info) as tmp:
    tmp.write_text(json.dumps(result.info | {"experiment": snakemake.params.experiment}, indent=1))
