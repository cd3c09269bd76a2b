import math
import os

EXPERIMENTS = config["run_experiments"] or list(config["experiments"])
_unknown = sorted(set(EXPERIMENTS) - set(config["experiments"]))
if _unknown:
    raise ValueError(
        f"run_experiments names {_unknown}, not among experiments {list(config['experiments'])}"
    )
N_RECORDS = (
    len(config["records"]["indices"])
    if config["records"].get("indices")
    else config["records"]["count"]
)
N_IN_CHUNKS = math.ceil(
    config["training"]["n_in"] / config["training"]["in_models_per_job"]
)
N_OUT_GROUPS = math.ceil(N_RECORDS / config["training"]["records_per_job"])

# The idx files of Fashion-MNIST, as lood.data.sources.FASHION_MNIST_FILES names them (a test checks they agree);
# the first two (the training set) are what prepare_data reads.
FASHION_MNIST_NAMES = [
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
]


wildcard_constraints:
    experiment="|".join(EXPERIMENTS),
    chunk=r"\d+",
    group=r"\d+",
    copies=r"\d+",


localrules:
    all,
    # Downloads run where the workflow was started: compute nodes often have no internet.
    download_cifar10,
    download_fashion_mnist,
    select_records,
    make_probes,
    fig_correlation,
    fig_landscape,
    fig_activation,
    fig_vulnerable,
    fig_reconstruction,
    fig_influence,
    fig_group,
    fig_canary,
    make_canaries,
    fig_sigma,
    depth_networks,
    plot_depth,
    fig_depth,
    fig_most_exposed,
    fig_privacy,
    fig_size,
    audit,
    audit_report,
    report_landing,
    replication,


def get_arch(wildcards):
    """The experiment's architecture: `model` with the experiment's overrides."""
    return {**config["model"], **config["experiments"][wildcards.experiment]}


def get_in_chunks(wildcards):
    """Logit files of every in-model chunk of the experiment."""
    return expand(
        "results/{experiment}/nn/in/chunk{chunk}.npz",
        experiment=wildcards.experiment,
        chunk=range(N_IN_CHUNKS),
    )


def get_sigma2_inputs(wildcards):
    """In-model chunks when nngp.sigma2 is calibrate (it reads their training logits), else nothing."""
    return get_in_chunks(wildcards) if config["nngp"]["sigma2"] == "calibrate" else []


def get_spread_inputs(wildcards):
    """In-model chunks when nngp.spread is calibrate (it reads their logits on training and held-out records)."""
    return get_in_chunks(wildcards) if config["nngp"]["spread"] == "calibrate" else []


def get_out_groups(wildcards):
    """Logit files of every out-model record group of the experiment."""
    return expand(
        "results/{experiment}/nn/out/group{group}.npz",
        experiment=wildcards.experiment,
        group=range(N_OUT_GROUPS),
    )


def get_model_ids(wildcards):
    """The in-model indices one chunk trains."""
    per_job = config["training"]["in_models_per_job"]
    start = int(wildcards.chunk) * per_job
    return list(range(start, min(start + per_job, config["training"]["n_in"])))


def get_group_positions(wildcards):
    """Positions (rows of records.csv) of the records one out-model job trains."""
    per_job = config["training"]["records_per_job"]
    start = int(wildcards.group) * per_job
    return list(range(start, min(start + per_job, N_RECORDS)))


def get_dataset_source(wildcards):
    """The raw input of prepare_data: the CIFAR-10 archive, the Fashion-MNIST training files, a user .npz, or nothing (digits)."""
    source = config["data"]["source"]
    if source == "cifar10":
        return "resources/cifar-10-python.tar.gz"
    if source == "fashion_mnist":
        folder = config["data"].get("path")
        if not folder:  # downloaded by download_fashion_mnist
            return expand(
                "resources/fashion-mnist/{name}.gz", name=FASHION_MNIST_NAMES[:2]
            )
        files = []
        for name in FASHION_MNIST_NAMES[:2]:
            found = [
                p
                for p in (f"{folder}/{name}.gz", f"{folder}/{name}")
                if os.path.isfile(p)
            ]
            if not found:
                raise ValueError(
                    f"data.path {folder} holds neither {name}.gz nor {name}. Point data.path at a directory "
                    "with the Fashion-MNIST idx files (apt-get install dataset-fashion-mnist installs them; "
                    'config/README.md, "Data", says where), or remove data.path to download them'
                )
            files.append(found[0])
        return files
    if source == "npz":
        return config["data"]["path"]
    return []


def get_activation_pair():
    """The two experiments compared by fig_activation, or none when either is not run."""
    pair = config["figures"].get("activation")
    if not pair:
        return []
    unknown = [name for name in pair if name not in config["experiments"]]
    if unknown:
        raise ValueError(
            f"figures.activation names {unknown}, not in experiments {list(config['experiments'])}"
        )
    return pair if set(pair) <= set(EXPERIMENTS) else []


def get_figure(name, experiments=None):
    """PNG paths of one per-experiment figure."""
    return expand(
        "results/{experiment}/figures/{name}.png",
        experiment=experiments or EXPERIMENTS,
        name=name,
    )


def get_copies_logits(wildcards):
    """In-model logits with m >= 2 copies of the duplicated records, one file per multiplicity (groups.multiplicities)."""
    return expand(
        "results/{experiment}/group/nn/copies{copies}.npz",
        experiment=wildcards.experiment,
        copies=[m for m in config["groups"]["multiplicities"] if m >= 2],
    )


def get_depth_networks():
    """The experiments of depth_study.networks (null: figures.activation) that this run trains, in config order."""
    names = config["depth_study"]["networks"]
    if names is None:
        names = config["figures"].get("activation") or []
    unknown = [name for name in names if name not in config["experiments"]]
    if unknown:
        raise ValueError(
            f"depth_study.networks names {unknown}, not in experiments {list(config['experiments'])}"
        )
    return [name for name in names if name in EXPERIMENTS]


def get_depth_archs():
    """The architectures (`model` with overrides) of the depth study's networks."""
    return [
        {**config["model"], **config["experiments"][name]}
        for name in get_depth_networks()
    ]


def get_depth_in_chunks():
    """In-model chunk files of every network of the depth study."""
    return expand(
        "results/{experiment}/nn/in/chunk{chunk}.npz",
        experiment=get_depth_networks(),
        chunk=range(N_IN_CHUNKS),
    )


def get_all_targets():
    """Every figure, table and the per-record query files."""
    targets = []
    for name in [
        "correlation",
        "landscape",
        "reconstruction",
        "influence",
        "sigma",
        "privacy",
    ]:
        targets += get_figure(name)
    if config["nngp"]["all_records"]:
        targets += get_figure("vulnerable")
    if config["groups"]["run_by_default"]:
        targets += get_figure("group") + get_figure("group_networks")
    if config["canaries"]["run_by_default"]:
        targets += get_figure("canary")
    if get_activation_pair():
        targets.append("results/comparison/activation.png")
    if config["depth_study"]["run_by_default"]:
        targets.append("results/depth/depth.png")
    targets.append("results/report/landing.rst")
    return targets


def get_landing_tables():
    """The tables behind the report's per-figure lines (lood.reporting.landing), for every experiment."""
    names = [
        "nn/mia.csv",
        "nn/landscape.csv",
        "nngp/lood.csv",
        "nngp/sigma2.csv",
        "nngp/query.csv",
        "figures/landscape_peaks.csv",
        "figures/influence.csv",
    ]
    if config["nngp"]["all_records"]:
        names.append("nngp/lood_all.csv")
    return [f"results/{e}/{name}" for e in EXPERIMENTS for name in names]


def get_weights_output(stage):
    """A `weights` output for the training rules when training.save_weights is set, else none."""
    if not config["training"]["save_weights"]:
        return {}
    name = "chunk{chunk}" if stage == "in" else "group{group}"
    return {"weights": f"results/{{experiment}}/nn/{stage}/{name}_weights.pt"}


def get_audit_experiment():
    """The experiment whose architecture the audit's kernel follows (audit.experiment, else the first run)."""
    name = config["audit"]["experiment"] or EXPERIMENTS[0]
    if name not in config["experiments"]:
        raise ValueError(
            f"audit.experiment {name!r} is not among experiments {list(config['experiments'])}"
        )
    return name


def get_audit_arch():
    """The audit's architecture: `model` with the audit experiment's overrides."""
    return {**config["model"], **config["experiments"][get_audit_experiment()]}
