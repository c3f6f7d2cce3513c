"""Mistakes on ``python -m runtime``'s command line and in the places a broker file points at
are a message naming where (file or option) and what, exit code 2, never a traceback."""

from __future__ import annotations

import pathlib

import pytest

from runtime.cli import build_parser
from runtime.errors import ConfigError


@pytest.mark.parametrize(
    "argv",
    [
        ["proxy", "--listen-port", "70000"],
        ["proxy", "--listen-port", "-1"],
        ["cluster", "--proxy", "--proxy-port", "65536"],
        ["namesrv", "--listen-port", "x"],
        ["broker", "-c", "b.properties", "--listen-port", "99999"],
    ],
)
def test_a_port_option_out_of_range_is_a_usage_error(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a port option that is no port (bind() raised OverflowError for the proxy's)
    # When the command line is parsed
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(argv)
    # Then it is argparse's usage error naming the option
    assert exited.value.code == 2
    assert f"argument {argv[-2]}" in capsys.readouterr().err


def make_node(
    tmp_path: pathlib.Path, text: str, *extra: str, root: pathlib.Path | None = None
) -> None:
    from runtime.cli import _make_node

    conf = tmp_path / "broker.properties"
    conf.write_text(f"brokerName=broker-a\nstorePathRootDir={root or tmp_path / 'store'}\n{text}")
    _make_node(build_parser().parse_args(["broker", "-c", str(conf), *extra]))


def test_an_override_mistake_names_the_option_not_config(tmp_path: pathlib.Path) -> None:
    # Given a bad --namesrv-addr
    # When the broker's config is made
    with pytest.raises(ConfigError) as refused:
        make_node(tmp_path, "", "--namesrv-addr", "nowhere")
    # Then the error names the option on the command line (it said '<config>: namesrvAddr')
    assert (refused.value.file, refused.value.key) == ("command line", "--namesrv-addr")
    # And a check the override fails with the file's own values names the file and its key
    with pytest.raises(ConfigError) as clash:
        make_node(tmp_path, "haListenPort=10950\n", "--listen-port", "10950")
    assert clash.value.file == str(tmp_path / "broker.properties")
    assert clash.value.key == "haListenPort"


def test_an_unusable_commit_log_directory_names_file_and_key(tmp_path: pathlib.Path) -> None:
    # Given storePathCommitLog under a regular file (the store's start raised
    # NotADirectoryError from os.makedirs: a traceback and exit code 1)
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    # When the broker's config is made (main() answers its ConfigError with exit code 2)
    with pytest.raises(ConfigError) as refused:
        make_node(tmp_path, f"storePathCommitLog={blocker / 'commitlog'}\n")
    # Then it stops before starting with the file, the key and the problem
    assert refused.value.file == str(tmp_path / "broker.properties")
    assert refused.value.key == "storePathCommitLog"
    assert "is not a directory" in refused.value.problem


def test_an_unusable_data_dir_names_the_option(tmp_path: pathlib.Path) -> None:
    # Given --data-dir under a regular file
    blocker = tmp_path / "file"
    blocker.write_text("")
    # When the broker's config is made
    with pytest.raises(ConfigError) as refused:
        make_node(tmp_path, "", "--data-dir", str(blocker / "d"))
    # Then the error names the option
    assert (refused.value.file, refused.value.key) == ("command line", "--data-dir")
    # And storePathRootDir under a file names the config file and that key
    with pytest.raises(ConfigError) as in_file:
        make_node(tmp_path, "", root=blocker / "x")
    assert in_file.value.file == str(tmp_path / "broker.properties")
    assert in_file.value.key == "storePathRootDir"
    assert "is not a directory" in in_file.value.problem
