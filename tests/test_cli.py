import json
import subprocess
import sys

import pytest

from brainexpr.cli import SUBCOMMANDS, build_parser, main


def test_help_and_version(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert "brainexpr" in capsys.readouterr().out
    parser = build_parser()
    assert set(SUBCOMMANDS) <= set(parser._subparsers._group_actions[0].choices)


def test_info_writes_summary(data_dir, tmp_path, capsys):
    assert main(["info", "--data-dir", str(data_dir), "--out", str(tmp_path / "o")]) == 0
    summary = json.loads((tmp_path / "o" / "data_summary.json").read_text())
    assert summary["samples"]["total"] == 3702
    assert summary["regional_expression"] == {"regions": 83, "genes": 15633}


def test_missing_data_gives_one_line_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "o"
    code = main(["info", "--data-dir", str(tmp_path / "empty"), "--out", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "missing data file" in err[0]
    assert "Traceback" not in err[0]
    assert not out.exists()


def test_fetch_list(data_dir, capsys):
    assert main(["fetch", "--list", "--data-dir", str(data_dir)]) == 0
    out = capsys.readouterr().out
    assert "regional-dk83" in out and "verified" in out and "cite:" in out


def test_console_entry_point_runs():
    result = subprocess.run([sys.executable, "-m", "brainexpr", "--help"], capture_output=True,
                            text=True, check=False)
    assert result.returncode == 0 and "fetch" in result.stdout
