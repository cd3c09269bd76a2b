from lood.data.prepare import select_records
from lood.io import load_npz, save_csv

from _common import setup

log = setup(snakemake)
dataset = load_npz(snakemake.input.dataset)
records = select_records(dataset["y"], snakemake.params.records, snakemake.params.seed)
save_csv(snakemake.output.records, records)
log.info("%d records: %s", len(records), records["record"].tolist())
