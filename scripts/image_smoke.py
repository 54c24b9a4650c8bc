"""Build the production image without a Docker daemon and smoke-run it (CI's image step).

    .venv/bin/python scripts/image_smoke.py            # build, smoke, clean up
    .venv/bin/python scripts/image_smoke.py --keep     # keep the storage (prints its path)

Run as root on a Debian-like machine with buildah, podman, runc and mmdebstrap
(`.ci/run` installs them). When any of them is missing the step is skipped with a
message naming them and exit status 0: the image is the one check that may be
skipped, and only there. Needs KAFKA_BOOTSTRAP_SERVERS for the `run` check.

Why it is done this way (each was a failure on this kind of machine first):
- no registry but Debian's is reachable, so the base image is made locally:
  `mmdebstrap --variant=minbase` with python3, python3-venv and ca-certificates,
  imported with `podman import` and passed as the Dockerfile's BASE_IMAGE;
- crun refuses the host's hybrid cgroups: runc with the cgroupfs manager;
- the default ulimits cannot be raised here: explicit `default_ulimits`;
- outbound TLS goes through an intercepting proxy: the host's CA bundle and a
  pip.conf naming it are mounted read-only into the build's RUN steps only;
- all storage lives in a temporary folder (overlay driver), unmounted and removed
  at the end, so nothing is left in /var/lib/containers.

Checks: `--help`; `validate` on the example mapping shipped in the image; the
process runs as uid 10001, cannot write the read-only root filesystem, and the
image has no compiler; then `vibes-bridge run`
on the host network against the test broker and the simulator until the
simulator has sent one event, and a clean stop on SIGTERM.
"""

from __future__ import annotations

import argparse
import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REQUIRED_TOOLS = ("buildah", "podman", "runc", "mmdebstrap")
BASE_TAG = "localhost/vibes-bridge-base:bookworm"
IMAGE_TAG = "localhost/vibes-bridge:smoke"
BASE_PACKAGES = "python3,python3-venv,ca-certificates"
BASE_CACHE = ROOT / ".cache" / "image" / "bookworm-minbase.tar"
BASE_CACHE_MAX_AGE_S = 7 * 24 * 3600
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
EXAMPLE_CONFIG = "/usr/share/vibes-bridge/examples/bridge.yaml"
EXPECTED_UID = "10001"
RUN_DELIVERY_TIMEOUT_S = 120.0
SIM_START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 40


class SmokeFailed(Exception):
    """A check failed; the message says which and what was seen."""


def log(message: str) -> None:
    print(f"[image-smoke] {message}", file=sys.stderr, flush=True)


class Engine:
    """buildah and podman on a private storage under one temporary folder."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.env = dict(os.environ)
        storage_conf = workdir / "storage.conf"
        storage_conf.write_text(
            "[storage]\n"
            'driver = "overlay"\n'
            f'graphroot = "{workdir / "graph"}"\n'
            f'runroot = "{workdir / "run"}"\n'
        )
        containers_conf = workdir / "containers.conf"
        containers_conf.write_text(
            "[containers]\n"
            'default_ulimits = ["nofile=20000:20000", "nproc=4096:4096"]\n'
            "[engine]\n"
            'runtime = "runc"\n'
            'cgroup_manager = "cgroupfs"\n'
            'events_logger = "file"\n'
        )
        self.env["CONTAINERS_STORAGE_CONF"] = str(storage_conf)
        self.env["CONTAINERS_CONF"] = str(containers_conf)

    def run(
        self, args: Sequence[str], *, check: bool = True, timeout: float = 900
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            list(args), env=self.env, capture_output=True, text=True, timeout=timeout, check=False
        )
        if check and result.returncode != 0:
            raise SmokeFailed(
                f"{' '.join(args[:3])} ... exited {result.returncode}:\n"
                f"{result.stdout[-3000:]}{result.stderr[-3000:]}"
            )
        return result

    def cleanup(self) -> None:
        """Remove containers, unmount every layer, delete the storage folder."""
        for args in (
            ["podman", "rm", "--all", "--force"],
            ["buildah", "rm", "--all"],
            ["podman", "unmount", "--all", "--force"],
            ["podman", "system", "reset", "--force"],
        ):
            self.run(args, check=False, timeout=120)
        for mount_point in mounts_under(self.workdir):
            subprocess.run(["umount", "-l", mount_point], check=False)
        shutil.rmtree(self.workdir, ignore_errors=True)


def mounts_under(folder: Path) -> list[str]:
    """Mount points below ``folder``, deepest first, read from /proc/mounts."""
    prefix = str(folder)
    with open("/proc/mounts", encoding="utf-8") as mounts:
        points = [line.split()[1] for line in mounts if line.split()[1].startswith(prefix)]
    return sorted(points, key=len, reverse=True)


def base_tarball(workdir: Path) -> Path:
    """A minbase Debian with python3, built by mmdebstrap; reused for a week."""
    if BASE_CACHE.exists() and time.time() - BASE_CACHE.stat().st_mtime < BASE_CACHE_MAX_AGE_S:
        log(f"base: reusing {BASE_CACHE.relative_to(ROOT)}")
        return BASE_CACHE
    BASE_CACHE.parent.mkdir(parents=True, exist_ok=True)
    partial = workdir / "base.tar"
    log("base: mmdebstrap --variant=minbase bookworm (about a minute)")
    # No mirror given: mmdebstrap uses the host's apt sources, the one reachable registry.
    subprocess.run(
        ["mmdebstrap", "--quiet", "--variant=minbase", f"--include={BASE_PACKAGES}", "bookworm",
         str(partial)],
        check=True,
        timeout=900,
    )  # fmt: skip
    shutil.move(partial, BASE_CACHE)
    return BASE_CACHE


def build_image(engine: Engine) -> None:
    tarball = base_tarball(engine.workdir)
    engine.run(["podman", "import", str(tarball), BASE_TAG])
    pip_conf = engine.workdir / "pip.conf"
    pip_conf.write_text(f"[global]\ncert = {HOST_CA_BUNDLE}\n")
    revision = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    log("build: buildah build --isolation chroot --pull=never")
    started = time.monotonic()
    engine.run(
        [
            "buildah", "build", "--isolation", "chroot", "--pull=never", "--layers=false",
            "--build-arg", f"BASE_IMAGE={BASE_TAG}",
            "--build-arg", f"REVISION={revision or 'unknown'}",
            "--build-arg", f"CREATED={time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}",
            "-v", f"{HOST_CA_BUNDLE}:{HOST_CA_BUNDLE}:ro",
            "-v", f"{pip_conf}:/etc/pip.conf:ro",
            "--tag", IMAGE_TAG, "--file", str(ROOT / "Dockerfile"), str(ROOT),
        ]
    )  # fmt: skip
    log(f"build: done in {time.monotonic() - started:.0f} s")


def podman_run(engine: Engine, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """``podman run`` with the restrictions the Helm chart applies."""
    return engine.run(
        ["podman", "run", "--rm", "--read-only", "--cap-drop=ALL", "--network", "none", *args],
        check=check,
        timeout=300,
    )


PROBE = """
import os, shutil, sys
problems = []
if os.getuid() == 0 or os.getgid() == 0:
    problems.append(f"runs as uid {os.getuid()} gid {os.getgid()}")
try:
    open("/opt/vibes-bridge/probe", "w")
    problems.append("the root filesystem is writable")
except OSError:
    pass
for compiler in ("gcc", "cc", "g++", "clang", "make"):
    if shutil.which(compiler):
        problems.append(f"the image has a compiler: {compiler}")
import bridge.cli
print(os.getuid())
sys.exit("; ".join(problems) or 0)
"""


def smoke_static(engine: Engine) -> None:
    """The checks that need neither Kafka nor the simulator."""
    user = engine.run(["podman", "image", "inspect", "--format", "{{.Config.User}}", IMAGE_TAG])
    if user.stdout.strip() != f"{EXPECTED_UID}:{EXPECTED_UID}":
        raise SmokeFailed(
            f"image user is {user.stdout.strip()!r}, want {EXPECTED_UID}:{EXPECTED_UID}"
        )
    help_text = podman_run(engine, IMAGE_TAG, "--help").stdout
    if "validate" not in help_text or "run" not in help_text:
        raise SmokeFailed(f"--help does not list the commands:\n{help_text}")
    log("ok: --help")
    podman_run(engine, IMAGE_TAG, "validate", "-c", EXAMPLE_CONFIG)
    log("ok: validate on the example mapping")
    probe = podman_run(engine, "--entrypoint", "python3", IMAGE_TAG, "-c", PROBE, check=False)
    if probe.returncode != 0 or probe.stdout.strip() != EXPECTED_UID:
        raise SmokeFailed(f"runtime probe: {probe.stdout.strip()} {probe.stderr.strip()}")
    log("ok: non-root uid 10001, read-only root filesystem, no compiler")


class Simulator:
    """``vibes-bridge sim`` on the host, from the project's own venv."""

    def __init__(self, log_path: Path) -> None:
        self.log_file = log_path.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bridge", "sim", "--port", "0"],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=self.log_file,
            text=True,
        )
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], SIM_START_TIMEOUT_S)
        line = self.proc.stdout.readline().strip() if ready else "(no output)"
        if not line.startswith("listening on "):
            self.stop()
            raise SmokeFailed(f"simulator did not start in {SIM_START_TIMEOUT_S:.0f} s: {line!r}")
        self.url = line.removeprefix("listening on ")

    def sent(self) -> int:
        with urllib.request.urlopen(f"{self.url}/_sim/stats", timeout=5) as answer:
            stats: dict[str, int] = json.load(answer)
        return stats["sent"]

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=20)
        self.log_file.close()


def produce_one_order(bootstrap: str, topic: str) -> None:
    from confluent_kafka import Producer
    from confluent_kafka.admin import AdminClient
    from confluent_kafka.cimpl import NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics([NewTopic(topic, num_partitions=1)]).values():
        future.result(timeout=30)
    producer = Producer({"bootstrap.servers": bootstrap})
    value = {"order_id": "o-smoke-1", "customer_id": "c-smoke-1"}
    producer.produce(topic, key=b"c-smoke-1", value=json.dumps(value).encode())
    if producer.flush(30) != 0:
        raise SmokeFailed("the test record was not acknowledged by the broker")


def smoke_config(bootstrap: str, sim_url: str, topic: str) -> str:
    return f"""version: 1
kafka:
  bootstrap_servers: {bootstrap}
  group_id: {topic}
vibes:
  base_url: {sim_url}
  company_key: demo
  username: demo
  password_file: /etc/vibes-bridge/secrets/password
management: {{host: 127.0.0.1, port: 0}}
dead_letter: {{topic: {topic}.dlq}}
sources:
  - topic: {topic}
    format: json
rules:
  - name: smoke
    topic: {topic}
    event_type: image_smoke
    recipient: {{external_person_id: customer_id}}
    event_data: {{order_id: order_id}}
"""


def smoke_run(engine: Engine) -> None:
    """``vibes-bridge run`` in the image until the simulator has sent one event."""
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if not bootstrap:
        raise SmokeFailed("KAFKA_BOOTSTRAP_SERVERS is not set; the run check needs the broker")
    topic = f"image-smoke-{uuid.uuid4().hex[:12]}"
    config_dir = engine.workdir / "config"
    (config_dir / "secrets").mkdir(parents=True)
    (config_dir / "secrets" / "password").write_text("demo\n")
    simulator = Simulator(engine.workdir / "sim.log")
    container = f"vibes-bridge-smoke-{topic}"
    try:
        (config_dir / "bridge.yaml").write_text(smoke_config(bootstrap, simulator.url, topic))
        config_dir.chmod(0o755)
        produce_one_order(bootstrap, topic)
        engine.run(
            ["podman", "run", "--detach", "--name", container, "--read-only", "--cap-drop=ALL",
             "--network", "host", "--volume", f"{config_dir}:/etc/vibes-bridge:ro", IMAGE_TAG]
        )  # fmt: skip
        wait_for_delivery(engine, container, simulator)
        log("ok: run delivered one event to the simulator")
        engine.run(["podman", "stop", "--time", str(STOP_TIMEOUT_S), container])
        status = engine.run(["podman", "inspect", "--format", "{{.State.ExitCode}}", container])
        if status.stdout.strip() != "0":
            raise SmokeFailed(f"run exited {status.stdout.strip()} on SIGTERM, want 0")
        log("ok: run stopped cleanly on SIGTERM")
    except SmokeFailed:
        logs = engine.run(["podman", "logs", container], check=False)
        log(f"container log:\n{logs.stdout[-4000:]}{logs.stderr[-4000:]}")
        raise
    finally:
        simulator.stop()


def wait_for_delivery(engine: Engine, container: str, simulator: Simulator) -> None:
    deadline = time.monotonic() + RUN_DELIVERY_TIMEOUT_S
    while time.monotonic() < deadline:
        if simulator.sent() >= 1:
            return
        state = engine.run(["podman", "inspect", "--format", "{{.State.Status}}", container])
        if state.stdout.strip() != "running":
            raise SmokeFailed(f"the bridge container is {state.stdout.strip()}, not running")
        time.sleep(0.5)  # polling interval of a bounded wait, not synchronisation
    raise SmokeFailed(f"no event reached the simulator within {RUN_DELIVERY_TIMEOUT_S:.0f} s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--keep", action="store_true", help="keep the image storage folder")
    options = parser.parse_args()
    missing = [tool for tool in REQUIRED_TOOLS if shutil.which(tool) is None]
    if missing:
        log(f"SKIPPED: the image build needs {', '.join(missing)}, which are not installed")
        return 0
    workdir = Path(tempfile.mkdtemp(prefix="vibes-bridge-image-"))
    engine = Engine(workdir)
    started = time.monotonic()
    try:
        build_image(engine)
        smoke_static(engine)
        smoke_run(engine)
    except (SmokeFailed, subprocess.SubprocessError) as failure:
        log(f"FAILED: {failure}")
        return 1
    finally:
        if options.keep:
            log(f"storage kept in {workdir} (CONTAINERS_STORAGE_CONF={workdir}/storage.conf)")
        else:
            engine.cleanup()
    log(f"image smoke passed in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
