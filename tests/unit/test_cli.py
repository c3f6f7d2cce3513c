"""``python -m runtime``'s command line: what --help lists comes from the commands' own parsers;
process options mean the same before and after the command."""

from __future__ import annotations

import pathlib
import re

import pytest

import runtime.admin
from runtime.admin import command_names
from runtime.cli import build_parser, main
from runtime.errors import ConfigError


def test_command_names_are_what_admin_parses(capsys: pytest.CaptureFixture[str]) -> None:
    names = command_names()
    # Then they are mqadmin's names, each once, and each one the admin parser accepts
    assert len(names) == len(set(names)) and {"clusterList", "deleteTopic"} <= set(names)
    assert "consumerStatus" in names and "resetOffsetByTime" in names
    for name in names:
        with pytest.raises(SystemExit) as done:
            runtime.admin.build_parser().parse_args([name, "--help"])
        assert done.value.code == 0
        assert f"python -m runtime admin {name}" in capsys.readouterr().out


def test_help_lists_every_admin_command() -> None:
    # When the top-level help is formatted
    text = " ".join(build_parser().format_help().split())
    # Then every admin command is named in it, as a whole word
    for name in command_names():
        assert re.search(rf"\b{name}\b", text), name


def test_the_admin_docstring_describes_every_command() -> None:
    doc = runtime.admin.__doc__ or ""
    listed = set(re.findall(r"^    (\w+)\s", doc, flags=re.MULTILINE))
    assert listed == set(command_names())


def test_a_subcommand_help_does_not_carry_the_admin_list(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["cluster", "--help"])
    out = capsys.readouterr().out
    assert "--profile" in out and "admin commands" not in out


PROCESS_COMMANDS = [["cluster"], ["namesrv"], ["broker", "-c", "b.conf"], ["proxy"]]


@pytest.mark.parametrize("command", PROCESS_COMMANDS)
def test_options_before_the_command_are_kept(command: list[str]) -> None:
    # Given the process options written before the command (as in RocketMQ's scripts)
    before = ["--tls-config", "tls.properties", "--log-level", "debug", "--ephemeral-ports"]
    # When the command line is parsed
    args = build_parser().parse_args([*before, *command])
    # Then the command's own (absent) options did not reset them to their defaults
    assert args.tls_config == pathlib.Path("tls.properties")
    assert args.log_level == "DEBUG"
    assert args.ephemeral_ports is True


@pytest.mark.parametrize("command", PROCESS_COMMANDS)
def test_options_after_the_command_and_defaults(command: list[str]) -> None:
    after = build_parser().parse_args([*command, "--tls-config", "t", "--log-level", "error"])
    assert (after.tls_config, after.log_level) == (pathlib.Path("t"), "ERROR")
    plain = build_parser().parse_args(command)
    assert (plain.tls_config, plain.log_level, plain.ephemeral_ports) == (None, "INFO", False)
    assert getattr(plain, "data_dir", None) is None


def test_data_dir_before_the_command_is_kept() -> None:
    args = build_parser().parse_args(["--data-dir", "/d", "broker", "-c", "b.conf"])
    assert args.data_dir == pathlib.Path("/d")


@pytest.mark.parametrize("command", ["admin", "bench"])
def test_process_options_before_admin_or_bench_are_a_usage_error(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given process options written before a client command, which takes its own
    # When it runs
    with pytest.raises(SystemExit) as exited:
        main(["--log-level", "info", command, "--help"])
    # Then it stops with a usage error naming the right form (not a traceback)
    assert exited.value.code == 2
    assert f"{command} takes its options after its name" in capsys.readouterr().err


def broker_namesrv(tmp_path: pathlib.Path, text: str, *extra: str) -> str:
    from runtime.cli import _make_node

    conf = tmp_path / "broker.properties"
    conf.write_text(f"brokerName=broker-a\n{text}")
    node = _make_node(build_parser().parse_args(["broker", "-c", str(conf), *extra]))
    return node.brokers[0].namesrv_addr


def test_a_broker_without_namesrv_addr_reads_the_environment_as_rocketmqs_does(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given NAMESRV_ADDR in the environment
    monkeypatch.setenv("NAMESRV_ADDR", "10.0.0.5:9876;10.0.0.6:9876")
    # Then a broker file without namesrvAddr uses it; the file's and --namesrv-addr win over it
    assert broker_namesrv(tmp_path, "") == "10.0.0.5:9876;10.0.0.6:9876"
    assert broker_namesrv(tmp_path, "namesrvAddr=10.0.0.7:9876\n") == "10.0.0.7:9876"
    assert broker_namesrv(tmp_path, "", "--namesrv-addr", "10.0.0.8:9876") == "10.0.0.8:9876"
    # And a bad value is a config error naming the variable
    monkeypatch.setenv("NAMESRV_ADDR", "nowhere")
    with pytest.raises(ConfigError, match=r"\$NAMESRV_ADDR"):
        broker_namesrv(tmp_path, "")


@pytest.mark.parametrize(
    ("argv", "command"),
    [
        (["proxy", "--namesrv-addr", "h:1"], "proxy"),
        (["--log-level", "debug", "proxy"], "proxy"),
        (["--tls-config", "proxy.properties", "broker", "-c", "proxy"], "broker"),
        ([], None),
        (["cluster", "--proxy"], "cluster"),
        (["--data-dir", "proxy", "cluster", "--proxy"], "cluster"),  # a value, not a command
    ],
)
def test_the_entry_point_finds_the_command_it_patches_for(
    argv: list[str], command: str | None
) -> None:
    # python -m runtime proxy alone runs without gevent's monkey-patching (runtime/__main__.py;
    # importing that module here would patch the test process)
    from runtime.commands import command_of

    assert command_of(argv) == command


def test_proxy_options_are_checked() -> None:
    from runtime.proxy import settings_from

    args = build_parser().parse_args(["proxy", "--access-key", "only-the-access-key"])
    with pytest.raises(ConfigError, match="give both or neither"):
        settings_from(args)
    args = build_parser().parse_args(["proxy", "--invisible", "0"])
    with pytest.raises(ConfigError, match="must be > 0"):
        settings_from(args)
    fine = settings_from(build_parser().parse_args(["cluster", "--proxy", "--max-attempts", "3"]))
    assert fine["max_attempts"] == 3 and fine["consume_from_first"] is False
    assert "max_lite_topics" not in fine  # ProxySettings' default
    lite = settings_from(build_parser().parse_args(["proxy", "--max-lite-topics", "50"]))
    assert lite["max_lite_topics"] == 50
    with pytest.raises(ConfigError, match="--max-lite-topics"):
        settings_from(build_parser().parse_args(["proxy", "--max-lite-topics", "-1"]))
