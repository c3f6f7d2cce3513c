"""Install the real third-party RocketMQ clients the interop tests drive, each in its own folder.

- ``ons``: ali-ons 3.12.0 (npm, pure JavaScript) into ``.interop/ons`` with ``npm ci`` from the
  package.json and package-lock.json kept in ``tests/interop/ons/``.
- ``cpp``: ``rocketmq==0.4.4`` (PyPI wheel bundling the C++ 1.x client) into the virtualenv
  ``.interop/cpp`` from ``tests/interop/cpp/requirements.txt``. It installs a top-level package
  named ``rocketmq``, which is why it never shares an interpreter with the project.
- ``cvs``: ``rocketmq-python-cvs==2.1.0.3`` (the same binding API over the C++ 2.1 engine) into
  ``.interop/cvs`` from ``tests/interop/cvs/requirements.txt``; driven by the same scripts.
- ``grpc5``: ``rocketmq-python-client==5.1.2`` (RocketMQ 5's gRPC client, through actormq's
  proxy) into ``.interop/grpc5``; its scripts are in ``tests/interop/grpc5/``.
- ``node5``: ``rocketmq-client-nodejs`` 1.0.8 (RocketMQ 5's Node.js gRPC client, through the
  proxy) into ``.interop/node5`` with ``npm ci`` from ``tests/interop/node5/``, like ``ons``.

Idempotent and fast: a stamp file records a hash of the inputs (pins, tool versions); when it
matches and the client still loads, nothing runs. Concurrent installers (two pytest runs in one
tree) serialise on a lock file. ``RegistryUnreachable`` is raised only when the package registry
cannot be reached (DNS, refused or reset connections, time-outs); any other failure raises
``InstallFailed`` with the tool's output.

By hand: ``python -m tests.interop.install [ons|cpp|cvs|grpc5|node5 ...]`` (all by default).
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

REPO = pathlib.Path(__file__).resolve().parents[2]
HERE = pathlib.Path(__file__).resolve().parent
INTEROP_DIR = REPO / ".interop"
STAMP = ".actormq-installed"
INSTALL_TIMEOUT = 600.0
NPM_CI = "ci --ignore-scripts --no-audit --no-fund --fetch-retries=1 --fetch-timeout=60000"
PIP_INSTALL = "install --disable-pip-version-check --no-input --retries 1 --timeout 60 -r"

ONS_VERSION = "3.12.0"
CPP_VERSION = "0.4.4"


class InstallError(Exception):
    """Installing a client failed; ``output`` holds what the tool printed."""

    def __init__(self, message: str, output: str = "") -> None:
        super().__init__(message)
        self.output = output

    def __str__(self) -> str:
        text = super().__str__()
        return f"{text}\n{self.output[-6000:]}" if self.output else text


class RegistryUnreachable(InstallError):
    """The package registry could not be reached: the only reason interop tests may skip."""


class InstallFailed(InstallError):
    """Any other install failure: a real error, never a skip."""


# npm prints the Node/libuv error code of a failed fetch ("npm error code ECONNREFUSED",
# "request to https://... failed, reason: getaddrinfo ENOTFOUND ...") or "npm error network".
_NPM_NETWORK = re.compile(
    r"\b(ENOTFOUND|EAI_AGAIN|EAI_FAIL|ECONNREFUSED|ECONNRESET|ETIMEDOUT|ESOCKETTIMEDOUT|"
    r"ENETUNREACH|ENETDOWN|EHOSTUNREACH|EHOSTDOWN|EPIPE|ERR_SOCKET_TIMEOUT|"
    r"UND_ERR_CONNECT_TIMEOUT|UND_ERR_SOCKET)\b|npm (?:ERR!|error) network"
)
# pip (urllib3/requests) retries and then says which connection failed.
_PIP_NETWORK = re.compile(
    r"NewConnectionError|Failed to establish a new connection|Temporary failure in name "
    r"resolution|Name or service not known|No address associated with hostname|nodename nor "
    r"servname|ConnectTimeoutError|ReadTimeoutError|Read timed out|Max retries exceeded|"
    r"ProxyError|Network is unreachable|No route to host|Connection refused|Connection reset|"
    r"ConnectionResetError|RemoteDisconnected|IncompleteRead|ProtocolError\('Connection aborted"
)


def npm_output_means_unreachable(output: str) -> bool:
    return bool(_NPM_NETWORK.search(output))


def pip_output_means_unreachable(output: str) -> bool:
    return bool(_PIP_NETWORK.search(output))


@dataclass(frozen=True)
class Client:
    """An installed client: how to run its scripts as subprocesses."""

    name: str
    version: str
    root: pathlib.Path
    interpreter: tuple[str, ...]
    scripts: pathlib.Path
    extra_env: tuple[tuple[str, str], ...] = ()

    def command(self, script: str, *args: str) -> list[str]:
        return [*self.interpreter, str(self.scripts / script), *args]

    def env(self, home: pathlib.Path, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """Environment for one client process: its own HOME (clients log under ~/logs)."""
        env = dict(os.environ if base is None else base)
        env.update(self.extra_env)
        env["HOME"] = str(home)
        env["PYTHONUNBUFFERED"] = "1"
        return env


@contextlib.contextmanager
def _locked(path: pathlib.Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _run(
    argv: Sequence[str],
    *,
    cwd: pathlib.Path | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = INSTALL_TIMEOUT,
) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            list(argv),
            cwd=cwd,
            env=dict(env) if env is not None else None,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=timeout,
            check=False,
        )
    except FileNotFoundError as exc:
        raise InstallFailed(f"{argv[0]} is not installed: {exc}") from exc
    except subprocess.TimeoutExpired as exc:
        output = exc.output if isinstance(exc.output, str) else (exc.output or b"").decode()
        # No answer at all within the limit: nothing said no, the registry did not answer.
        raise RegistryUnreachable(
            f"{' '.join(argv)} got no answer in {timeout:.0f}s", output
        ) from exc


def _version(argv: Sequence[str]) -> str:
    done = _run(argv, timeout=60)
    if done.returncode != 0:
        raise InstallFailed(f"{' '.join(argv)} exited {done.returncode}", done.stdout)
    return done.stdout.strip()


def _digest(*parts: bytes | str) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode() if isinstance(part, str) else part)
        h.update(b"\0")
    return h.hexdigest()


def _stamp_matches(root: pathlib.Path, digest: str) -> bool:
    try:
        return (root / STAMP).read_text().strip() == digest
    except OSError:
        return False


# -- npm clients (ali-ons 3.12.0; rocketmq-client-nodejs 1.0.8: RocketMQ 5's gRPC client) -------

ONS_SOURCES = HERE / "ons"
NODE5_SOURCES = HERE / "node5"
NODE5_VERSION = "1.0.8"


def _npm_installed_version(root: pathlib.Path, package: str) -> str | None:
    try:
        meta = json.loads((root / "node_modules" / package / "package.json").read_text())
    except (OSError, ValueError):
        return None
    return meta.get("version")


def install_ons(
    root: pathlib.Path | None = None, *, env: Mapping[str, str] | None = None
) -> Client:
    """Install ali-ons into ``root`` (default ``.interop/ons``) with ``npm ci``."""
    return _install_npm_client(
        root or INTEROP_DIR / "ons",
        sources=ONS_SOURCES,
        package="ali-ons",
        version=ONS_VERSION,
        loads="require('ali-ons').Producer; require('ali-ons').Consumer",
        env=env,
    )


def install_node5(
    root: pathlib.Path | None = None, *, env: Mapping[str, str] | None = None
) -> Client:
    """Install RocketMQ 5's Node.js client ``rocketmq-client-nodejs@1.0.8`` into ``root``
    (default ``.interop/node5``) with ``npm ci``; its scripts are in ``tests/interop/node5``."""
    m = "require('rocketmq-client-nodejs')"
    return _install_npm_client(
        root or INTEROP_DIR / "node5",
        sources=NODE5_SOURCES,
        package="rocketmq-client-nodejs",
        version=NODE5_VERSION,
        loads=f"{m}.Producer; {m}.SimpleConsumer; {m}.PushConsumer",
        env=env,
    )


def _install_npm_client(
    root: pathlib.Path,
    *,
    sources: pathlib.Path,
    package: str,
    version: str,
    loads: str,
    env: Mapping[str, str] | None,
) -> Client:
    """``npm ci --ignore-scripts`` from the package.json and package-lock.json in ``sources``
    (which also holds the scripts); then ``loads`` (JavaScript) must run under node."""
    client = Client(
        name=package,
        version=version,
        root=root,
        interpreter=(shutil.which("node") or "node",),
        scripts=sources,
        extra_env=(("NODE_PATH", str(root / "node_modules")),),
    )
    manifest = (sources / "package.json").read_bytes()
    lock = (sources / "package-lock.json").read_bytes()
    base_env = dict(os.environ if env is None else env)
    with _locked(root.parent / f"{root.name}.lock"):
        node = _version(["node", "--version"])
        digest = _digest(manifest, lock, node)
        if _stamp_matches(root, digest) and _npm_installed_version(root, package) == version:
            return client
        npm = shutil.which("npm", path=base_env.get("PATH"))
        if npm is None:
            raise InstallFailed("npm is not installed (Node.js 18+ with npm is required)")
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir(parents=True)
        (root / "package.json").write_bytes(manifest)
        (root / "package-lock.json").write_bytes(lock)
        npm_env = dict(base_env)
        for setting in ("update_notifier", "fund", "audit"):
            npm_env.setdefault(f"npm_config_{setting}", "false")
        done = _run([npm, *NPM_CI.split()], cwd=root, env=npm_env)
        if done.returncode != 0:
            unreachable = npm_output_means_unreachable(done.stdout)
            error = RegistryUnreachable if unreachable else InstallFailed
            raise error(f"npm ci for {package}@{version} exited {done.returncode}", done.stdout)
        installed = _npm_installed_version(root, package)
        if installed != version:
            raise InstallFailed(f"npm ci installed {package} {installed!r}, wanted {version}")
        check = _run(
            ["node", "-e", loads],
            env={**npm_env, "NODE_PATH": str(root / "node_modules")},
            timeout=60,
        )
        if check.returncode != 0:
            raise InstallFailed(f"{package} installed but does not load", check.stdout)
        (root / STAMP).write_text(digest + "\n")
        return client


# -- C++ clients (rocketmq 0.4.4: engine 1.x; rocketmq-python-cvs 2.1.0.3: engine 2.1) ----------

CPP_SOURCES = HERE / "cpp"  # the scripts, shared by both C++ engines
CVS_SOURCES = HERE / "cvs"
CVS_VERSION = "2.1.0.3"
GRPC5_SOURCES = HERE / "grpc5"
GRPC5_VERSION = "5.1.2"


def _venv_python(root: pathlib.Path) -> pathlib.Path:
    return root / "bin" / "python"


def _cpp_check(distribution: str, module: str = "rocketmq.client") -> str:
    return f"import importlib.metadata as m, {module}; print(m.version({distribution!r}))"


def _cpp_loads(
    root: pathlib.Path, env: Mapping[str, str], distribution: str, module: str = "rocketmq.client"
) -> str | None:
    python = _venv_python(root)
    if not python.exists():
        return None
    done = _run([str(python), "-c", _cpp_check(distribution, module)], env=env, timeout=60)
    return done.stdout.strip() if done.returncode == 0 else None


def install_cpp(
    root: pathlib.Path | None = None,
    *,
    env: Mapping[str, str] | None = None,
    python: str | None = None,
) -> Client:
    """Install ``rocketmq==0.4.4`` into the virtualenv ``root`` (default ``.interop/cpp``)."""
    return _install_wheel_client(
        root or INTEROP_DIR / "cpp",
        requirements=CPP_SOURCES / "requirements.txt",
        distribution="rocketmq",
        version=CPP_VERSION,
        name="rocketmq-client-cpp",
        env=env,
        python=python,
    )


def install_cvs(
    root: pathlib.Path | None = None,
    *,
    env: Mapping[str, str] | None = None,
    python: str | None = None,
) -> Client:
    """Install ``rocketmq-python-cvs==2.1.0.3`` into ``root`` (default ``.interop/cvs``)."""
    return _install_wheel_client(
        root or INTEROP_DIR / "cvs",
        requirements=CVS_SOURCES / "requirements.txt",
        distribution="rocketmq-python-cvs",
        version=CVS_VERSION,
        name="rocketmq-client-cpp 2.1",
        env=env,
        python=python,
    )


def install_grpc5(
    root: pathlib.Path | None = None,
    *,
    env: Mapping[str, str] | None = None,
    python: str | None = None,
) -> Client:
    """Install RocketMQ 5's gRPC client ``rocketmq-python-client==5.1.2`` into ``root``
    (default ``.interop/grpc5``); its scripts are in ``tests/interop/grpc5``."""
    return _install_wheel_client(
        root or INTEROP_DIR / "grpc5",
        requirements=GRPC5_SOURCES / "requirements.txt",
        distribution="rocketmq-python-client",
        version=GRPC5_VERSION,
        name="rocketmq-clients python (gRPC)",
        env=env,
        python=python,
        scripts=GRPC5_SOURCES,
        module="rocketmq.v5.client",
    )


def _install_wheel_client(
    root: pathlib.Path,
    *,
    requirements: pathlib.Path,
    distribution: str,
    version: str,
    name: str,
    env: Mapping[str, str] | None,
    python: str | None,
    scripts: pathlib.Path = CPP_SOURCES,
    module: str = "rocketmq.client",
) -> Client:
    """One virtualenv with one pinned wheel; the scripts run under its interpreter."""
    client = Client(
        name=name,
        version=version,
        root=root,
        interpreter=(str(_venv_python(root)), "-u"),
        scripts=scripts,
    )
    pins = requirements.read_bytes()
    base_env = dict(os.environ if env is None else env)
    base_env.pop("PYTHONPATH", None)
    base_env.pop("VIRTUAL_ENV", None)
    python = python or sys.executable
    with _locked(root.parent / f"{root.name}.lock"):
        interpreter = _version([python, "-c", "import sys; print(sys.version)"])
        # the interpreter's real path: the same Python reached through another worktree's
        # .venv symlink must not count as a change (it reinstalled, under a running test)
        digest = _digest(pins, interpreter, os.path.realpath(python))
        loads = (
            _cpp_loads(root, base_env, distribution, module)
            if _stamp_matches(root, digest)
            else None
        )
        if loads == version:
            return client
        shutil.rmtree(root, ignore_errors=True)
        made = _run([python, "-m", "venv", str(root)], env=base_env, timeout=120)
        if made.returncode != 0:
            raise InstallFailed(f"{python} -m venv {root} exited {made.returncode}", made.stdout)
        pip = [str(_venv_python(root)), "-m", "pip", *PIP_INSTALL.split()]
        done = _run([*pip, str(requirements)], env=base_env)
        if done.returncode != 0:
            unreachable = pip_output_means_unreachable(done.stdout)
            error = RegistryUnreachable if unreachable else InstallFailed
            what = f"pip install {distribution}=={version}"
            raise error(f"{what} exited {done.returncode}", done.stdout)
        loaded = _cpp_loads(root, base_env, distribution, module)
        if loaded != version:
            check = [str(_venv_python(root)), "-c", _cpp_check(distribution, module)]
            raise InstallFailed(
                f"{distribution} installed but does not load as {version} (got {loaded!r})",
                _run(check, env=base_env, timeout=60).stdout,
            )
        (root / STAMP).write_text(digest + "\n")
        return client


INSTALLERS = {
    "ons": install_ons,
    "cpp": install_cpp,
    "cvs": install_cvs,
    "grpc5": install_grpc5,
    "node5": install_node5,
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("clients", nargs="*", help=f"any of {', '.join(INSTALLERS)} (default all)")
    args = parser.parse_args(argv)
    unknown = set(args.clients) - set(INSTALLERS)
    if unknown:
        parser.error(f"unknown client(s): {', '.join(sorted(unknown))}")
    status = 0
    for name in args.clients or INSTALLERS:
        try:
            client = INSTALLERS[name]()
        except RegistryUnreachable as exc:
            print(f"{name}: registry unreachable: {exc}", file=sys.stderr)
            status = max(status, 3)
        except InstallError as exc:
            print(f"{name}: install failed: {exc}", file=sys.stderr)
            status = 1
        else:
            print(f"{name}: {client.name} {client.version} in {client.root}")
    return status


if __name__ == "__main__":
    sys.exit(main())
