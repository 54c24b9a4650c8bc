"""The Apache Kafka jars, resolved once with Maven (``tools/kafka/pom.xml``).

The local broker runs from the official jars rather than a downloaded tarball so
that Maven's checksummed, cached resolution does the fetching; this module owns the
``.cache/kafka/libs-<version>/`` directory and the marker and lock that make an
interrupted or concurrent resolution safe.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

from devtools.kafka_broker.base import (
    CACHE_DIR,
    LIBS_MARKER_NAME,
    MAVEN_TIMEOUT,
    POM_FILE,
    REPO_ROOT,
    KafkaBrokerError,
    file_lock,
    say,
)


def libs_dir(version: str) -> Path:
    return CACHE_DIR / f"libs-{version}"


def ensure_kafka_libs(version: str) -> Path:
    """Resolve the broker's jars with Maven into ``.cache/kafka/libs-<version>/``, once.

    The marker file is written only after a complete copy, so an interrupted download
    is redone on the next call. A lock file serialises concurrent callers.
    """
    target = libs_dir(version)
    marker = target / LIBS_MARKER_NAME
    if marker.is_file():
        return target
    with file_lock(CACHE_DIR / f"libs-{version}.lock"):
        if marker.is_file():  # another process finished it while we waited
            return target
        mvn = shutil.which("mvn")
        if not mvn:
            raise KafkaBrokerError(
                "mvn not found: the local Kafka broker resolves its jars with Maven "
                "(apt-get install maven), or set KAFKA_BOOTSTRAP_SERVERS."
            )
        if target.exists():
            shutil.rmtree(target)
        for leftover in CACHE_DIR.glob(f"libs-{version}.partial-*"):  # interrupted runs
            shutil.rmtree(leftover, ignore_errors=True)
        partial = CACHE_DIR / f"libs-{version}.partial-{os.getpid()}"
        cmd = [
            mvn,
            "-q",
            "-B",
            "-Dstyle.color=never",
            "-f",
            str(POM_FILE),
            f"-Dkafka.version={version}",
            "dependency:copy-dependencies",
            "-DincludeScope=runtime",
            f"-DoutputDirectory={partial}",
        ]
        say(f"resolving Apache Kafka {version} jars with Maven (first run only) ...")
        started = time.monotonic()
        try:
            result = subprocess.run(
                cmd,
                cwd=REPO_ROOT,
                capture_output=True,
                text=True,
                timeout=MAVEN_TIMEOUT,
                check=False,
                stdin=subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired as exc:
            shutil.rmtree(partial, ignore_errors=True)
            raise KafkaBrokerError(f"Maven did not finish within {MAVEN_TIMEOUT:.0f} s") from exc
        main_jar = partial / f"kafka_2.13-{version}.jar"
        if result.returncode != 0 or not main_jar.is_file():
            shutil.rmtree(partial, ignore_errors=True)
            output = (result.stdout + result.stderr).strip().splitlines()[-60:]
            raise KafkaBrokerError(
                f"Maven could not resolve Kafka {version} (exit {result.returncode}): "
                f"{' '.join(cmd)}\n" + "\n".join(output)
            )
        jars = sorted(p.name for p in partial.glob("*.jar"))
        partial.rename(target)
        tmp_marker = target / (LIBS_MARKER_NAME + ".tmp")
        tmp_marker.write_text(json.dumps({"version": version, "jars": jars}, indent=1) + "\n")
        tmp_marker.rename(marker)
        say(f"{len(jars)} jars in {target} ({time.monotonic() - started:.1f} s)")
        return target
