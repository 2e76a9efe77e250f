"""deploy/ files parse and carry the fields their tools need (no Docker or Kubernetes here)."""
import re
import subprocess
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
    from orchestrator.config import credentials_in

    text = (ROOT / "deploy/mlflow/docker-compose.yaml").read_text()
    (c,) = load_all("deploy/mlflow/docker-compose.yaml")
    services = c["services"]
    assert {"postgres", "minio", "mlflow"} <= set(services)
    for name, svc in services.items():
        for port in svc.get("ports", []):
            assert port.startswith("127.0.0.1:"), (name, port)
        # no secret on a process command line, no install at container start
        argv = " ".join(str(x) for key in ("command", "entrypoint") for x in (svc.get(key) or []))
        assert "PASSWORD" not in argv and "SECRET" not in argv and "pip install" not in argv, (name, argv)
    mlflow = services["mlflow"]
    assert "build" in mlflow and mlflow["command"][:2] == ["mlflow", "server"]
    assert "basic-auth" in mlflow["command"] and "s3://mlflow" in mlflow["command"]
    store = mlflow["environment"]["MLFLOW_BACKEND_STORE_URI"]
    assert store.startswith("postgresql+psycopg2://") and credentials_in(store) is None
    # every variable taken from .env is guarded (compose refuses to start without it): no defaults
    refs = re.findall(r"\$\{([A-Z_]+)([^}]*)\}", text)
    assert refs and all(rest.startswith(":?") for _, rest in refs), refs
    example = dict(line.split("=", 1) for line in (ROOT / "deploy/mlflow/.env.example").read_text().splitlines()
                   if line and not line.startswith("#"))
    assert all(v == "" for k, v in example.items() if "PASSWORD" in k or "SECRET" in k), example
    ignored = subprocess.run(["git", "check-ignore", "-q", "deploy/mlflow/.env"], cwd=ROOT)
    assert ignored.returncode == 0  # a filled-in .env is never committed
    # the image reads the auth settings that tests/deploy/test_mlflow_server.py runs a server with
    docker = (ROOT / "deploy/mlflow/Dockerfile").read_text()
    assert "COPY basic_auth.ini /etc/mlflow/basic_auth.ini" in docker
    assert "ENV MLFLOW_AUTH_CONFIG_PATH=/etc/mlflow/basic_auth.ini" in docker


def test_containers_run_as_non_root_with_ray_auth_on():
    for rel in ("deploy/Dockerfile", "deploy/mlflow/Dockerfile"):
        lines = (ROOT / rel).read_text().splitlines()
        users = [i for i, ln in enumerate(lines) if ln.startswith("USER ")]
        assert users and lines[users[-1]].split()[1] not in ("root", "0"), rel
        assert users[-1] > max(i for i, ln in enumerate(lines) if ln.startswith("RUN ")), rel  # after installing
    for rel in ("deploy/k8s/raycluster.yaml", "deploy/k8s/rayjob.yaml"):
        (doc,) = load_all(rel)
        spec = doc["spec"].get("rayClusterSpec", doc["spec"])
        assert spec["authOptions"]["mode"] == "token", rel
        groups = [spec["headGroupSpec"], *spec["workerGroupSpecs"]]
        for group in groups:
            for container in group["template"]["spec"]["containers"]:
                assert container["securityContext"]["runAsNonRoot"] is True, (rel, container["name"])
    (launcher,) = load_all("deploy/ray/cluster.yaml")
    starts = launcher["head_start_ray_commands"] + launcher["worker_start_ray_commands"]
    assert all("RAY_AUTH_MODE=token" in cmd for cmd in starts if "ray start" in cmd)
    # nothing in the shipped code or deploy files turns Ray's authentication off
    tracked = subprocess.run(["git", "ls-files", "orchestrator", "trainers", "deploy", "configs"], cwd=ROOT,
                             capture_output=True, text=True).stdout.split()
    assert not [f for f in tracked if "RAY_AUTH_MODE=disabled" in (ROOT / f).read_text(errors="ignore")
                or '"RAY_AUTH_MODE", "disabled"' in (ROOT / f).read_text(errors="ignore")]


def test_dockerfile_installs_like_the_readme():
    docker = (ROOT / "deploy/Dockerfile").read_text()
    make = (ROOT / "Makefile").read_text()
    readme = (ROOT / "README.md").read_text()
    assert re.search(r"RUN make setup\b", docker)
    assert "make test" in readme and "make demo" in readme
    setup = make[make.index("$(VENV)/.installed:"):make.index("demo:")]
    assert "pip install -q --no-compile torch==2.13.0" in setup and "--no-deps aihwkit==1.1.0" in setup
    assert "compileall" in setup  # the byte-code pip was told not to write
    assert 'ENTRYPOINT ["nasseg"]' in docker and "ARG BASE=" in docker
