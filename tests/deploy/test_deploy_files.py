"""deploy/ files parse and carry the fields their tools need (no Docker or Kubernetes here)."""
import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def load_all(rel):
    return list(yaml.safe_load_all((ROOT / rel).read_text()))


def test_ray_cluster_launcher_yaml():
    (c,) = load_all("deploy/ray/cluster.yaml")
    for key in ("cluster_name", "provider", "available_node_types", "head_node_type", "setup_commands",
                "head_start_ray_commands", "worker_start_ray_commands"):
        assert key in c, key
    assert c["head_node_type"] in c["available_node_types"]
    assert c["provider"]["type"] and all("node_config" in v for v in c["available_node_types"].values())
    assert any("make setup" in cmd for cmd in c["setup_commands"])  # the same install as everywhere
    assert any("ray start --head" in cmd for cmd in c["head_start_ray_commands"])


def test_kuberay_manifests():
    (cluster,) = load_all("deploy/k8s/raycluster.yaml")
    (job,) = load_all("deploy/k8s/rayjob.yaml")
    assert (cluster["apiVersion"], cluster["kind"]) == ("ray.io/v1", "RayCluster")
    assert (job["apiVersion"], job["kind"]) == ("ray.io/v1", "RayJob")
    for spec in (cluster["spec"], job["spec"]["rayClusterSpec"]):
        assert spec["rayVersion"] == "2.60.0"
        assert spec["headGroupSpec"]["template"]["spec"]["containers"][0]["image"]
        workers = spec["workerGroupSpecs"][0]
        limits = workers["template"]["spec"]["containers"][0]["resources"]["limits"]
        assert limits["nvidia.com/gpu"] == "1"
    assert job["spec"]["entrypoint"].startswith("nasseg search ")
    assert "--address auto" in job["spec"]["entrypoint"]
    head = job["spec"]["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]["containers"][0]
    assert head["envFrom"][0]["secretRef"]["name"]  # credentials via a Secret ...
    assert not any("PASSWORD" in e.get("name", "") for e in head.get("env", []))  # ... never inline


def test_mlflow_compose_is_local_only_with_auth_and_no_secrets():
    (c,) = load_all("deploy/mlflow/docker-compose.yaml")
    services = c["services"]
    assert {"postgres", "minio", "mlflow"} <= set(services)
    for name, svc in services.items():
        for port in svc.get("ports", []):
            assert port.startswith("127.0.0.1:"), (name, port)
    cmd = services["mlflow"]["command"]
    assert "--backend-store-uri postgresql+psycopg2://" in cmd and "--artifacts-destination s3://" in cmd
    assert "--app-name basic-auth" in cmd
    text = (ROOT / "deploy/mlflow/docker-compose.yaml").read_text()
    for var in ("POSTGRES_PASSWORD", "MINIO_ROOT_PASSWORD", "MLFLOW_AUTH_ADMIN_PASSWORD"):
        assert re.search(rf"{var}:\s*\$\{{{var}\}}", text), var  # from .env, never inline


def test_dockerfile_installs_like_the_readme():
    docker = (ROOT / "deploy/Dockerfile").read_text()
    make = (ROOT / "Makefile").read_text()
    readme = (ROOT / "README.md").read_text()
    assert re.search(r"RUN make setup\b", docker)
    assert "make test" in readme and "make demo" in readme
    setup = make[make.index("$(VENV)/.installed:"):make.index("demo:")]
    assert "pip install -q torch==2.13.0" in setup and "--no-deps aihwkit==1.1.0" in setup
    assert 'ENTRYPOINT ["nasseg"]' in docker and "ARG BASE=" in docker
