"""Command line: ``python -m runtime [cluster|namesrv|broker|proxy] ...``.

``python -m runtime`` with no arguments runs the default profile: one name server on 9876 and
one master broker on 10911, in one process. Every mode prints exactly one line starting with
``ready`` once its sockets listen, and exits 0 after SIGINT/SIGTERM.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import sys
from typing import TYPE_CHECKING, Any, TypeVar

from loguru import logger

from runtime import heap, logs, tls
from runtime.errors import ActorMQError, ConfigError
from runtime.fdlimit import raise_open_files_limit
from runtime.proxy import DEFAULT_PORT as DEFAULT_PROXY_PORT
from runtime.proxy import ProxyRole, add_proxy_options

if TYPE_CHECKING:
    from config import BrokerConfig, NamesrvConfig
    from runtime.node import Node

    C = TypeVar("C", NamesrvConfig, BrokerConfig)

DEFAULT_DATA_ROOT = pathlib.Path("~/.actormq")


def _default_data_dir(profile: str) -> pathlib.Path:
    env = os.environ.get("ACTORMQ_DATA_DIR")
    base = pathlib.Path(env) if env else DEFAULT_DATA_ROOT / profile
    return base.expanduser()


def _port(text: str) -> int:
    """argparse type of a port option: an integer in 0..65535 (0 picks a free port), so a bad
    one is a usage error naming the option, not a traceback from bind()."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(
            f"{port} is not a port number (0..65535; 0 picks a free port)"
        )
    return port


class _Parser(argparse.ArgumentParser):
    """The top-level parser: its help ends with the admin commands, read from
    ``runtime.admin``'s own parser when the help is printed (that module imports the client,
    which running a node does not need)."""

    def format_help(self) -> str:
        from runtime.admin import command_names

        self.epilog = (
            f"admin commands: {', '.join(command_names())} "
            "(python -m runtime admin COMMAND --help for each one's options)"
        )
        return super().format_help()


def _shared_options(
    after_command: bool,
) -> tuple[argparse.ArgumentParser, argparse.ArgumentParser, argparse.ArgumentParser]:
    """The options a process command takes both before and after its name (``--tls-config F
    broker ...`` or ``broker --tls-config F ...``): (common, data, ports). After the command
    their defaults are SUPPRESS: argparse copies every default of a subcommand's parser over
    the options parsed before it, so ``--tls-config F broker`` would otherwise run plain."""

    def default(value: object) -> object:
        return argparse.SUPPRESS if after_command else value

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--tls-config",
        type=pathlib.Path,
        default=default(None),
        help="RocketMQ's tls.properties (tls.server.mode, tls.server.certPath, ..., tls.enable): "
        "TLS on this process's remoting listeners and its own outbound connections "
        "(docs/deploy.md, TLS)",
    )
    common.add_argument(
        "--log-level",
        default=default("INFO"),
        type=str.upper,
        choices=logs.LEVELS,
        help="log level on stderr (default INFO)",
    )
    data = argparse.ArgumentParser(add_help=False)
    data.add_argument(
        "--data-dir",
        type=pathlib.Path,
        default=default(None),
        help="where stores live. cluster: default $ACTORMQ_DATA_DIR or ~/.actormq/<profile>, one "
        "subdirectory <brokerName>-<brokerId> per broker; broker: overrides storePathRootDir; "
        "proxy: where it keeps the TLS certificate it makes (proxy/proxy-tls.crt)",
    )
    ports = argparse.ArgumentParser(add_help=False)
    ports.add_argument(
        "--ephemeral-ports",
        action="store_true",
        default=default(False),
        help="bind every listener on a free port (tests); the ready line names them",
    )
    return common, data, ports


def build_parser() -> argparse.ArgumentParser:
    from config import list_profiles

    common, data, ports = _shared_options(after_command=False)
    parser = _Parser(
        prog="python -m runtime",
        description="actormq: a RocketMQ-compatible message queue. With no command, runs the "
        "default profile (name server on 9876, one master broker on 10911) in one process.",
        parents=[common, data, ports],
    )
    sub = parser.add_subparsers(
        dest="command", metavar="COMMAND", parser_class=argparse.ArgumentParser
    )
    common, data, ports = _shared_options(after_command=True)

    cluster = sub.add_parser(
        "cluster",
        parents=[common, data, ports],
        help="run a whole cluster profile in one process",
        description="Run a shipped profile or a profile TOML file in one process.",
    )
    cluster.add_argument(
        "--profile",
        default="default",
        help=f"shipped profile ({', '.join(list_profiles())}) or a path to a profile TOML",
    )
    cluster.add_argument(
        "--proxy",
        action="store_true",
        help="also serve RocketMQ 5's gRPC clients (a proxy in this process; docs/proxy.md)",
    )
    cluster.add_argument(
        "--proxy-port", type=_port, default=DEFAULT_PROXY_PORT, help="the proxy's port (8081)"
    )
    add_proxy_options(cluster)

    namesrv = sub.add_parser(
        "namesrv",
        parents=[common, ports],
        help="run one name server",
        description="Run one name server (stateless route registry).",
    )
    namesrv.add_argument("-c", "--config", type=pathlib.Path, help="namesrv .properties or .toml")
    namesrv.add_argument("--listen-port", type=_port, help="override listenPort")
    namesrv.add_argument("--listen-host", help="override the bind address")

    broker = sub.add_parser(
        "broker",
        parents=[common, data, ports],
        help="run one broker node",
        description="Run one broker (master or slave) from a RocketMQ-style config file.",
    )
    broker.add_argument(
        "-c", "--config", type=pathlib.Path, required=True, help="broker .properties or .toml"
    )
    broker.add_argument(
        "--namesrv-addr",
        help="override namesrvAddr (host:port;host:port); without either, $NAMESRV_ADDR",
    )
    broker.add_argument("--listen-port", type=_port, help="override listenPort")

    proxy = sub.add_parser(
        "proxy",
        parents=[common, data, ports],
        help="run one proxy: RocketMQ 5's gRPC clients served over a cluster",
        description="Serve RocketMQ 5's gRPC API (apache.rocketmq.v2.MessagingService) over the "
        "cluster the name servers know (docs/proxy.md).",
    )
    proxy.add_argument(
        "--namesrv-addr", help="the cluster's name servers (host:port;...); else $NAMESRV_ADDR"
    )
    proxy.add_argument("--listen-port", type=_port, default=DEFAULT_PROXY_PORT, help="(8081)")
    proxy.add_argument("--listen-host", default="127.0.0.1", help="bind address (127.0.0.1)")
    add_proxy_options(proxy)

    bench = sub.add_parser(
        "bench",
        help="client benchmarks (produce, batch, consume, latency); see bench/client_bench.py",
        add_help=False,
    )
    bench.add_argument("bench_args", nargs=argparse.REMAINDER)
    admin = sub.add_parser(
        "admin",
        help="mqadmin's commands (listed below); see python -m runtime admin --help",
        add_help=False,
    )
    admin.add_argument("admin_args", nargs=argparse.REMAINDER)
    return parser


def _make_node(args: argparse.Namespace) -> Node:
    from config import (
        NamesrvConfig,
        load_broker_config,
        load_namesrv_config,
        load_profile,
    )
    from runtime.node import Node

    command = args.command or "cluster"
    ephemeral = bool(getattr(args, "ephemeral_ports", False))
    if command == "cluster":
        profile = load_profile(getattr(args, "profile", "default"))
        data_dir = args.data_dir or _default_data_dir(profile.name)
        return Node(
            namesrvs=list(profile.namesrvs),
            brokers=list(profile.brokers),
            data_dir=data_dir.expanduser().resolve(),
            cluster_mode=True,
            ephemeral_ports=ephemeral,
        )
    if command == "namesrv":
        cfg = load_namesrv_config(args.config) if args.config else NamesrvConfig()
        overrides = {}
        if args.listen_port is not None:
            overrides["listen_port"] = args.listen_port
        if args.listen_host:
            overrides["listen_host"] = args.listen_host
        cfg = _overridden(cfg, overrides, args.config)
        return Node(
            namesrvs=[cfg],
            brokers=[],
            data_dir=None,
            cluster_mode=False,
            ephemeral_ports=ephemeral,
        )
    cfg = load_broker_config(args.config)
    overrides = {}
    if args.namesrv_addr:
        overrides["namesrv_addr"] = args.namesrv_addr
    elif not cfg.namesrv_addr and os.environ.get(NAMESRV_ENV, "").strip():
        overrides["namesrv_addr"] = _namesrv_from_env()  # RocketMQ's broker reads it too
    if args.listen_port is not None:
        overrides["listen_port"] = args.listen_port
    cfg = _overridden(cfg, overrides, args.config)
    data_dir = (args.data_dir or cfg.store_root()).expanduser().resolve()
    _check_store_dirs(cfg, args.config, data_dir, from_option=args.data_dir is not None)
    return Node(
        namesrvs=[],
        brokers=[cfg],
        data_dir=data_dir,
        cluster_mode=False,
        ephemeral_ports=ephemeral,
    )


NAMESRV_ENV = "NAMESRV_ADDR"
COMMAND_LINE = "command line"
"""Where an override's mistake is, in ConfigError's file part."""
_OPTIONS = {  # ($NAMESRV_ADDR is checked before it overrides: _namesrv_from_env)
    "listen_port": "--listen-port",
    "listen_host": "--listen-host",
    "namesrv_addr": "--namesrv-addr",
}


def _overridden(cfg: C, overrides: dict[str, Any], file: pathlib.Path | None) -> C:
    """``cfg`` with the command line's overrides; a mistake names the option (an override's
    value) or the config file and key (a check it fails together with the file's values)."""
    from config import with_overrides
    from config.fields import key_of

    if not overrides:
        return cfg
    try:
        return with_overrides(cfg, **overrides)
    except ConfigError as err:
        options = {key_of(type(cfg), attr): _OPTIONS[attr] for attr in overrides}
        if err.key in options:
            raise ConfigError(COMMAND_LINE, options[err.key], err.problem) from None
        raise ConfigError(os.fspath(file) if file else None, err.key, err.problem) from None


def _check_store_dirs(
    cfg: BrokerConfig, file: pathlib.Path, data_dir: pathlib.Path, *, from_option: bool
) -> None:
    """The broker's store directory and its own commit-log directory (storePathCommitLog) can
    be made and written (checked without making them): else a ConfigError naming the file and
    key (or --data-dir), not a traceback from the store's start."""
    from config import with_data_dir

    placed = with_data_dir(cfg, data_dir, per_node=False)
    file_key = (os.fspath(file), "storePathRootDir")
    dirs = [((COMMAND_LINE, "--data-dir") if from_option else file_key, data_dir)]
    if placed.store_path_commit_log:
        dirs.append(((os.fspath(file), "storePathCommitLog"), placed.commit_log_dir()))
    for (where, key), path in dirs:
        problem = _unwritable(path)
        if problem:
            raise ConfigError(where, key, problem)


def _unwritable(path: pathlib.Path) -> str | None:
    """Why directory ``path`` cannot be used (or made) for writing, else None: its nearest
    existing ancestor must be a directory this process may write in."""
    existing = path
    while not existing.exists() and existing.parent != existing:
        existing = existing.parent
    if not existing.is_dir():
        return f"{path}: {existing} is not a directory"
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"{path}: {existing} is not writable"
    return None


def _namesrv_from_env() -> str:
    """``$NAMESRV_ADDR``, checked (a broker without ``namesrvAddr`` or ``--namesrv-addr``
    uses it, as RocketMQ's broker does)."""
    from config.checks import parse_namesrv_addr

    value = os.environ[NAMESRV_ENV].strip()
    try:
        parse_namesrv_addr(value)
    except ValueError as exc:
        raise ConfigError(f"${NAMESRV_ENV}", None, str(exc)) from None
    return value


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["bench"]:  # the client benchmark lives in bench/, beside runtime/
        sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
        from bench.client_bench import main as bench_main

        return bench_main(argv[1:])
    if argv[:1] == ["admin"]:
        from runtime.admin import main as admin_main

        return admin_main(argv[1:])
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if args.command in ("bench", "admin"):  # options before it: argv[0] is not the command
        parser.error(
            f"{args.command} takes its options after its name: python -m runtime "
            f"{args.command} ... (python -m runtime {args.command} --help)"
        )
    if unknown:
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    logs.configure(args.log_level)
    raise_open_files_limit()
    try:
        if args.tls_config is not None:
            settings = tls.load(args.tls_config)
            tls.configure(settings)
            logger.info("tls: {}: {}", args.tls_config, settings.describe())
        if args.command == "proxy":
            from runtime.proxy import run as run_proxy

            return run_proxy(args)
        node = _make_node(args)
        node.start()
        if getattr(args, "proxy", False):
            _start_proxy(node, args)
    except ActorMQError as exc:
        logger.error("{}", exc)
        print(f"error: {exc}", file=sys.stderr)
        return 2
    heap.settle()  # start-up's objects out of the collector's way (runtime.heap)
    print(node.ready_line(), flush=True)
    return node.run()


def _start_proxy(node: Node, args: argparse.Namespace) -> None:
    """``cluster --proxy``: a proxy over this process's first name server, on its host; stopped
    before the brokers."""
    name, address = next((n, a) for n, a in node.addresses.items() if n.startswith("namesrv"))
    host = address.rsplit(":", 1)[0].strip("[]")
    port = 0 if node.ephemeral_ports else args.proxy_port
    try:
        kept = node.data_dir / "proxy" if node.data_dir is not None else None
        role = ProxyRole.from_args(address, host, port, args, kept)
        node.addresses["proxy"] = role.start()
        if role.metrics_address:
            node.addresses["proxy-metrics"] = role.metrics_address
    except BaseException:
        node.stop()
        raise
    node.before_stop.append(role.stop)
    logger.debug("proxy over {} ({})", name, address)
