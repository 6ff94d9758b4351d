from pathlib import Path

from brainexpr import config


def test_explicit_argument_wins(tmp_path, monkeypatch):
    monkeypatch.setenv(config.ENV_VAR, str(tmp_path / "env"))
    assert config.get_data_dir(tmp_path / "explicit") == tmp_path / "explicit"


def test_environment_variable_second(tmp_path, monkeypatch):
    monkeypatch.setenv(config.ENV_VAR, str(tmp_path))
    assert config.get_data_dir() == tmp_path
    assert config.candidate_data_dirs()[0] == tmp_path


def test_shared_folder_then_home(monkeypatch, tmp_path):
    monkeypatch.delenv(config.ENV_VAR, raising=False)
    candidates = config.candidate_data_dirs()
    assert candidates[0] == config.repository_root().parent / "shared" / "data"
    assert candidates[-1] == Path("~/brainexpr-data").expanduser()
    monkeypatch.setattr(config, "repository_root", lambda: tmp_path / "nowhere" / "repo")
    monkeypatch.chdir(tmp_path)
    assert config.get_data_dir() == Path("~/brainexpr-data").expanduser()
