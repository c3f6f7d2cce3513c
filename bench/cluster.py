"""The cluster a client benchmark runs against: the given name servers, or a ``python -m runtime``
it spawns (ASYNC_FLUSH or SYNC_FLUSH, free ports, a temporary data directory)."""

from __future__ import annotations

import argparse
import pathlib
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

REPO = pathlib.Path(__file__).resolve().parent.parent


PROFILE = """\
description = "bench: one name server, one {flush} master"
[[namesrv]]
listenPort = 9876
[[broker]]
brokerClusterName = "DefaultCluster"
brokerName = "broker-a"
brokerId = 0
brokerRole = "ASYNC_MASTER"
flushDiskType = "{flush}"
listenPort = 10911
haListenPort = 10912
"""
ACL_KEYS = ("bench-access", "bench-secret")
"""The account a spawned cluster with ``--acl`` has (every topic and group allowed)."""
ACL_FILE = """\
accounts:
  - accessKey: bench-access
    secretKey: bench-secret
    defaultTopicPerm: PUB|SUB
    defaultGroupPerm: PUB|SUB
"""


@contextmanager
def cluster(args: argparse.Namespace) -> Iterator[str]:
    """The name server address: the given one, or a spawned ``python -m runtime``."""
    if not args.spawn:
        from actors.client.config import resolve_namesrv

        yield ";".join(resolve_namesrv(args.namesrv))
        return
    acl = getattr(args, "acl", False)
    secure = getattr(args, "tls", False)
    with spawned(args.spawn, acl=acl, tls=secure) as (fields, proc):
        what = f"{args.spawn.upper()}_FLUSH{' ACL' if acl else ''}{' TLS' if secure else ''}"
        print(f"spawned {what} cluster: {fields['line']}", flush=True)
        args.broker_pid = proc.pid
        yield fields["namesrv"]


@contextmanager
def spawned(
    flush: str, *, acl: bool = False, tls: bool = False
) -> Iterator[tuple[dict[str, str], subprocess.Popen[str]]]:
    """``python -m runtime`` (default profile; SYNC_FLUSH when ``flush`` is "sync"; with the plain
    ACL on and the ``ACL_KEYS`` account when ``acl``) on free ports in a temporary data
    directory: yields the ready line's fields (and ``line``) and the process; stopped at the
    end."""
    with tempfile.TemporaryDirectory(prefix="actormq-bench-") as tmp:
        cmd = [sys.executable, "-m", "runtime"]
        if flush == "sync" or acl:
            text = PROFILE.format(flush="SYNC_FLUSH" if flush == "sync" else "ASYNC_FLUSH")
            if acl:
                acl_file = pathlib.Path(tmp) / "plain_acl.yml"
                acl_file.write_text(ACL_FILE)
                text += f'aclEnable = true\naclFile = "{acl_file}"\n'
            profile = pathlib.Path(tmp) / "bench.toml"
            profile.write_text(text)
            cmd += ["cluster", "--profile", str(profile)]
        cmd += ["--ephemeral-ports", "--data-dir", str(pathlib.Path(tmp) / "data")]
        if tls:  # enforcing, a self-signed certificate made by the openssl command
            cmd += ["--tls-config", str(_tls_config(pathlib.Path(tmp)))]
        cmd += ["--log-level", "WARNING"]
        proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, text=True)
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            if not line.startswith("ready"):
                raise SystemExit(f"cluster did not start: {line!r}")
            fields = dict(t.partition("=")[::2] for t in line.split()[1:])
            fields["line"] = line.strip()
            yield fields, proc
        finally:
            proc.terminate()
            proc.wait(30)


def _tls_config(tmp: pathlib.Path) -> pathlib.Path:
    """A ``tls.properties`` enforcing TLS with a fresh self-signed certificate."""
    cert, key = tmp / "bench.crt", tmp / "bench.key"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-subj", "/CN=bench", "-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
    )
    config = tmp / "tls.properties"
    config.write_text(
        f"tls.server.mode=enforcing\ntls.server.certPath={cert}\ntls.server.keyPath={key}\n"
        "tls.enable=true\n"
    )
    return config
