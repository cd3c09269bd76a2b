rule download_cifar10:
    output:
        archive="resources/cifar-10-python.tar.gz",
    log:
        "logs/data/download_cifar10.log",
    params:
        url=config["data"]["url"],
        md5=config["data"]["md5"],
    conda:
        "../envs/data.yaml"
    script:
        "../workflow_scripts/download_cifar10.py"


rule download_fashion_mnist:
    output:
        files=expand("resources/fashion-mnist/{name}.gz", name=FASHION_MNIST_NAMES),
    log:
        "logs/data/download_fashion_mnist.log",
    params:
        url=config["data"]["fashion_mnist_url"],
    conda:
        "../envs/data.yaml"
    script:
        "../workflow_scripts/download_fashion_mnist.py"


rule prepare_data:
    input:
        source=get_dataset_source,
    output:
        dataset="results/data/dataset.npz",
    log:
        "logs/data/prepare_data.log",
    params:
        data=config["data"],
        seed=config["seed"],
    conda:
        "../envs/data.yaml"
    script:
        "../workflow_scripts/prepare_data.py"


rule select_records:
    input:
        dataset="results/data/dataset.npz",
    output:
        records="results/data/records.csv",
    log:
        "logs/data/select_records.log",
    params:
        records=config["records"],
        seed=config["seed"],
    conda:
        "../envs/data.yaml"
    script:
        "../workflow_scripts/select_records.py"


rule make_probes:
    input:
        dataset="results/data/dataset.npz",
        records="results/data/records.csv",
    output:
        probes="results/data/probes.npz",
    log:
        "logs/data/make_probes.log",
    params:
        probes=config["probes"],
        seed=config["seed"],
    conda:
        "../envs/data.yaml"
    script:
        "../workflow_scripts/make_probes.py"
