"""Record where this job ran: the SLURM job id it saw (none when run locally)."""

import json
import os
import socket

record = {
    "rule": snakemake.rule,  # noqa: F821 (injected by Snakemake)
    "slurm_job_id": os.environ.get("SLURM_JOB_ID"),
    "slurm_job_name": os.environ.get("SLURM_JOB_NAME"),
    "gpus": os.environ.get("SLURM_GPUS") or os.environ.get("SLURM_JOB_GPUS"),
    "threads": snakemake.threads,  # noqa: F821
    "host": socket.gethostname(),
    "inputs": [json.load(open(path)) for path in snakemake.input],  # noqa: F821
}
with open(snakemake.log[0], "w") as log:  # noqa: F821
    log.write(f"ran {record['rule']} in SLURM job {record['slurm_job_id']}\n")
with open(snakemake.output[0], "w") as out:  # noqa: F821
    json.dump(record, out, indent=1)
