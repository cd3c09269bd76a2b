from lood.analytic.tables import landscape_table
from lood.io import load_npz, save_csv

from _common import nngp_job

log, nngp, sigma2, gp = nngp_job(snakemake)  # sigma2: chosen by rule choose_sigma2
table = landscape_table(gp, load_npz(snakemake.input.probes)).assign(sigma2=sigma2)
save_csv(snakemake.output.landscape, table)
log.info("landscape: %d rows", len(table))
