from pathlib import Path

from lood.io import atomic_path
from lood.reporting.landing import landing_rst

from _common import setup

log = setup(snakemake)
text = landing_rst(
    Path(snakemake.input.correlation[0]).parents[2],  # results/<experiment>/figures/correlation.csv
    snakemake.params.experiments,
    Path(snakemake.input.workflow).read_text(),
    snakemake.params.activation,
)
with atomic_path(snakemake.output.landing) as tmp:
    tmp.write_text(text)
log.info("report landing page for %s", ", ".join(snakemake.params.experiments))
