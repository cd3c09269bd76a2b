import pandas as pd

from lood.data.prepare import make_probes
from lood.io import load_npz, save_npz
from lood.settings import ProbeSettings

from _common import setup

log = setup(snakemake)
dataset = load_npz(snakemake.input.dataset)
records = pd.read_csv(snakemake.input.records)["record"].to_numpy()
settings = ProbeSettings.from_config(snakemake.params.probes, "probes")
probes = make_probes(dataset["X"], records, settings, snakemake.params.seed)
save_npz(snakemake.output.probes, **probes)
log.info(
    "probes: %s queries; t in units of %s; offsets from %.3g to %.3g",
    probes["queries"].shape,
    settings.scale,
    probes["offsets"].min(),
    probes["offsets"].max(),
)
