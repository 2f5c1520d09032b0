"""The Swarm stack, generated from compose.yaml: `docker compose config --format json` in,
a file for `docker stack deploy` out (JSON, which is YAML). One source of truth: images,
commands, environment, healthchecks, users, limits and volumes come from compose.yaml (and
.env); only what Swarm does differently is written here.

    docker compose config --format json | python3 stack.py --part apps --images refs ... >stack.json

Parts, deployed in this order by deploy/swarm/swarm.sh:
  data     postgres and redis, pinned to the node labelled kit.data=true, with the networks
  migrate  the one-shot release step (one task), a Swarm job that runs to completion
  static   the collected static files into each edge node's volume (a task a node), a job too
  apps     everything that serves: nginx on every kit.edge=true node, wsgi, asgi, backup

What differs from Compose, and why (README, "Past one host"):
  - no IPVS assumed: every service is `endpoint_mode: dnsrr` (nginx resolves the replicas
    itself, as it does under Compose) and nginx publishes its ports in `mode: host`;
  - the kit's images are named by digest (swarm.sh looks each release's tags up in the
    registry): a release in which nginx's image did not change leaves nginx running;
  - secrets are Swarm secrets, mounted at the same paths (/run/kit-secrets/<file>) with the
    same owner and mode as the per-service volumes of the `secrets` service: images unchanged.
    Who gets which file is read from the secrets' labels, set by `swarm.sh secrets` from what
    scripts/init-secrets.sh hands out;
  - nginx's templates are Swarm configs named by their content hash: a changed template is a
    new config, which rolls nginx out (configs are immutable);
  - nginx re-resolves the replicas every second (NGINX_DNS_VALID), within Swarm's delay
    between taking a task out of DNS and stopping it;
  - limits go to deploy.resources (reservations: a quarter of each limit), `restart` to a
    restart policy; Swarm's tmpfs mounts are root's, so nginx (which writes as its own
    user) runs on a writable root filesystem instead;
  - Swarm ignores `security_opt` (no-new-privileges) and `dns_opt`: the images carry no
    setuid programs, so nothing can gain privileges anyway.
"""

import argparse
import hashlib
import json
import sys
from pathlib import Path

DATA = ("postgres", "redis")
APPS = ("nginx", "wsgi", "asgi", "backup")
# Copied straight from the Compose service (names in the v3 schema that Swarm honours).
KEEP = (
    "command", "entrypoint", "environment", "healthcheck", "stop_grace_period", "user",
    "logging", "ulimits", "read_only", "cap_drop", "cap_add", "networks",
)  # fmt: skip
ROOT = Path(__file__).resolve().parents[2]


def resources(svc: dict) -> dict:
    limits = {"memory": str(svc["mem_limit"]), "cpus": str(svc["cpus"])}
    if svc.get("pids_limit"):
        limits["pids"] = svc["pids_limit"]
    # Reserve a quarter of the memory: the scheduler keeps that much free per task, the limit
    # caps bursts. No CPU reservation: CPU is shared (the limit caps it), and a reservation
    # that no longer fits (a node that took over a lost node's replicas) makes Swarm evict
    # tasks from the node, nginx among them.
    reserve = {"memory": str(int(svc["mem_limit"]) // 4)}
    return {"limits": limits, "reservations": reserve}


def mounts(svc: dict) -> list[dict]:
    out = []
    for v in svc.get("volumes", []):
        if v["type"] != "volume" or v["source"].startswith("secrets"):
            continue  # secrets become Swarm secrets; bind mounts have no place on a cluster
        out.append({k: v[k] for k in ("type", "source", "target", "read_only") if k in v})
    for t in svc.get("tmpfs", []):
        if "uid=" not in t:  # an owned one: see service()
            out.append({"type": "tmpfs", "target": t.split(":", 1)[0]})
    return out


def secrets_of(name: str, available: list[dict]) -> list[dict]:
    """The Swarm secrets for service `name` (labels kit.service/kit.file/kit.uid)."""
    return [
        {
            "source": s["name"],
            "target": f"/run/kit-secrets/{s['file']}",
            "uid": s["uid"],
            "gid": s["uid"],
            "mode": 0o400,
        }
        for s in available
        if s["service"] == name
    ]


def service(name: str, svc: dict, args, available: list[dict]) -> dict:
    out = {k: svc[k] for k in KEEP if svc.get(k) is not None}
    out["image"] = svc["image"]
    if "build" in svc:  # built by the kit: pushed per release (swarm.sh push)
        out["image"] = args.images[svc["image"]]
    out["volumes"] = mounts(svc)
    if any("uid=" in t for t in svc.get("tmpfs", [])):
        # Swarm's tmpfs belongs to root (0755): a service that writes as its own user keeps
        # the image's directories, owned by that user, on a writable root filesystem.
        out["read_only"] = False
    secret_owner = "wsgi" if name in ("migrate", "backup") else name
    out["secrets"] = secrets_of(secret_owner, available)
    out["deploy"] = {
        # A label of the service, not of its tasks: a new release that leaves an image as it
        # was changes the label but restarts nothing.
        "labels": {"kit.release": args.tag},
        "endpoint_mode": "dnsrr",
        "resources": resources(svc),
        "restart_policy": {"condition": "any", "delay": "5s"},
    }
    return out


def app_rollout(health: dict) -> dict:
    """One replica at a time, the new one started (and healthy) before the old one stops; a
    new task failing within the monitor window (the healthcheck's budget) rolls back."""
    monitor = f"{int(health['start_period'].rstrip('s')) + 10}s"
    rollout = {"parallelism": 1, "order": "start-first", "monitor": monitor, "delay": "2s"}
    return {
        "update_config": {**rollout, "failure_action": "rollback"},
        "rollback_config": {**rollout, "failure_action": "pause"},
    }


def build(compose: dict, args, available: list[dict]) -> dict:
    svcs = compose["services"]
    apps = APPS if args.backup == "on" else tuple(a for a in APPS if a != "backup")
    names = {"data": DATA, "migrate": ("migrate",), "static": ("static",), "apps": apps}[args.part]
    out: dict = {"version": "3.9", "services": {}}
    for name in names:
        src = svcs["migrate" if name == "static" else name]
        s = service(name, src, args, available)
        deploy = s["deploy"]
        if name in DATA:
            # A single primary with its volume: pinned to the data node, stopped before its
            # replacement starts (two servers must never share the files).
            deploy["placement"] = {"constraints": ["node.labels.kit.data == true"]}
            deploy["update_config"] = {"order": "stop-first", "failure_action": "rollback"}
        elif name == "migrate":
            deploy["mode"] = "replicated-job"
            deploy["restart_policy"] = {"condition": "none"}
        elif name == "static":
            # The static files the new release's pages name, on every node nginx serves from,
            # before the release serves them. Old names stay (cp, no delete), as in migrate.
            s["command"] = ["cp", "-a", "/app/staticfiles/.", "/srv/static/"]
            s["networks"], s["secrets"] = [], []
            s["volumes"] = [{"type": "volume", "source": "static", "target": "/srv/static"}]
            deploy["mode"] = "global-job"
            deploy["restart_policy"] = {"condition": "none"}
            deploy["placement"] = {"constraints": ["node.labels.kit.edge == true"]}
        elif name == "nginx":
            deploy["mode"] = "global"
            deploy["placement"] = {"constraints": ["node.labels.kit.edge == true"]}
            # Host-mode ports: one task per node holds them, so the old stops first.
            deploy["update_config"] = {"order": "stop-first", "failure_action": "rollback"}
            s["ports"] = [
                {"target": p["target"], "published": int(p["published"]), "mode": "host"}
                for p in src["ports"]
            ]
            s["configs"] = [
                {"source": c, "target": f"/etc/nginx/templates/{f}", "uid": "101", "mode": 0o444}
                for c, f in nginx_configs().items()
            ]
            # Swarm takes a stopping task out of DNS 2 s before it signals it (its gossip
            # delay): re-resolving every second, nginx sends it nothing more by then. With the
            # Compose default (5 s) nginx would send requests to a Gunicorn that is shutting
            # down, whose kept-alive connections no longer answer (a POST gets 502).
            s["environment"] = {**s.get("environment", {}), "NGINX_DNS_VALID": "1s"}
        elif name == "backup":
            # Its backups volume lives on one node: the data node, beside Postgres.
            deploy["placement"] = {"constraints": ["node.labels.kit.data == true"]}
        else:  # wsgi, asgi
            deploy["replicas"] = args.replicas[name]
            deploy["placement"] = {"preferences": [{"spread": "node.labels.kit.zone"}]}
            deploy.update(app_rollout(src["healthcheck"]))
        out["services"][name] = s
    # Each part declares the networks its services use; the first creates them, later
    # deploys find them by the stack's label.
    nets = {n for s in out["services"].values() for n in s.get("networks", [])}
    out["networks"] = {
        n: {"driver": "overlay", "internal": compose["networks"][n].get("internal", False)}
        for n in sorted(nets)
    }
    used_vols = {m.get("source") for s in out["services"].values() for m in s["volumes"]}
    out["volumes"] = {v: {} for v in sorted(used_vols - {None})}
    used_secrets = {x["source"] for s in out["services"].values() for x in s["secrets"]}
    out["secrets"] = {x: {"external": True} for x in sorted(used_secrets)}
    if args.part == "apps":
        out["configs"] = {
            c: {"name": f"{args.stack}_{c}", "file": str(ROOT / "nginx/templates" / f)}
            for c, f in nginx_configs().items()
        }
    for s in out["services"].values():
        if not s["secrets"]:
            del s["secrets"]
    return out


def nginx_configs() -> dict[str, str]:
    """{config name: template file}: the name carries the content hash (configs are immutable)."""
    found = {}
    for f in sorted((ROOT / "nginx/templates").glob("*.template")):
        digest = hashlib.sha256(f.read_bytes()).hexdigest()[:10]
        found[f"nginx-{f.name.removesuffix('.template').replace('.', '-')}-{digest}"] = f.name
    return found


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--part", choices=("data", "migrate", "static", "apps"), required=True)
    p.add_argument("--stack", required=True, help="the stack's name (prefix of its networks)")
    p.add_argument("--images", required=True, help="lines `<compose image> <registry ref>`")
    p.add_argument("--tag", required=True, help="the release's image tag (a label of each service)")
    p.add_argument("--wsgi-replicas", type=int, default=2)
    p.add_argument("--asgi-replicas", type=int, default=2)
    p.add_argument("--backup", choices=("on", "off"), default="on", help="the backup service")
    p.add_argument("--secrets", required=True, help="`docker secret inspect` of the kit's secrets")
    args = p.parse_args()
    args.images = dict(line.split() for line in Path(args.images).read_text().splitlines())
    args.replicas = {"wsgi": args.wsgi_replicas, "asgi": args.asgi_replicas}
    # Each secret's labels say whose it is: kit.service, kit.file, kit.uid (swarm.sh secrets).
    available = [
        {"name": x["Spec"]["Name"]} | {k[4:]: v for k, v in x["Spec"]["Labels"].items()}
        for x in json.loads(Path(args.secrets).read_text())
    ]
    json.dump(build(json.load(sys.stdin), args, available), sys.stdout, indent=1)


if __name__ == "__main__":
    main()
