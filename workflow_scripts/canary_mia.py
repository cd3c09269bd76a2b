import pandas as pd

from lood.data.canaries import attacked_rows
from lood.io import load_npz, save_csv
from lood.settings import CanarySettings, MIASettings
from lood.studies.group_attack import canary_mia_table

from _common import setup

log = setup(snakemake)
rows = attacked_rows(
    pd.read_csv(snakemake.input.canaries),
    pd.read_csv(snakemake.input.records)["record"].to_numpy(),
    CanarySettings.from_config(snakemake.params.canaries),
    load_npz(snakemake.input.dataset)["y"],
)
mia = canary_mia_table(
    rows,
    load_npz(snakemake.input.in_logits),
    load_npz(snakemake.input.out_logits),
    MIASettings.from_config(snakemake.params.mia).splits,
    snakemake.params.seed,
)
save_csv(snakemake.output.mia, mia)
log.info("canary MIA AUC by kind (real: the same models): %s", mia.groupby("kind")["auc"].median().round(3).to_dict())
