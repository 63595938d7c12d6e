"""``pip install .``: one import package ``src`` with the shipped presets, rule tables and debug set; ``dialsum``."""
from __future__ import annotations

import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

from src.config import resources
from tests.conftest import REPO

PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))


def test_every_package_under_src_is_listed_for_the_wheel() -> None:
    listed = {p for p in PYPROJECT["tool"]["setuptools"]["packages"] if not p.startswith("src._shipped")}
    on_disk = {".".join(p.parent.relative_to(REPO).parts) for p in (REPO / "src").rglob("__init__.py")}
    assert listed == on_disk, "add new src/ subpackages to [tool.setuptools] packages in pyproject.toml"


def test_the_console_command_is_the_entry_point() -> None:
    assert PYPROJECT["project"]["scripts"] == {"dialsum": "src.main:entry_point"}


def test_dialsum_dispatches_to_the_pipeline_and_the_other_tools(capsys) -> None:
    from src.main import entry_point

    for argv, prog in ((["--help"], "usage: dialsum "), (["run", "--help"], "usage: dialsum "),
                       (["evaluate", "--help"], "usage: dialsum evaluate"),
                       (["ensemble", "--help"], "usage: dialsum ensemble"),
                       (["compare", "--help"], "usage: dialsum compare"), (["runs", "--help"], "usage: dialsum runs")):
        with pytest.raises(SystemExit) as done:
            entry_point(argv)
        assert done.value.code == 0 and capsys.readouterr().out.startswith(prog), argv


def test_help_lists_every_stage_in_order(capsys) -> None:
    from src.cli import build_parser
    from src.pipeline import STAGE_NAMES

    assert " -> ".join(STAGE_NAMES) in build_parser().format_help().replace("\n", " ")


def test_inputs_are_found_in_the_working_directory_first_then_among_the_shipped_files(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert resources.find_input("configs/default.yaml") == resources.SHIPPED / "configs" / "default.yaml"
    assert resources.find_input("data/debug") == resources.SHIPPED / "data" / "debug"
    assert resources.find_input("data") == tmp_path / "data", "only configs/, docs/ and data/debug/ are shipped"
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "default.yaml").write_text("seed: 1\n")
    assert resources.find_input("configs/default.yaml") == tmp_path / "configs" / "default.yaml"
    assert resources.find_config("qwen2.5-7b-instruct") == resources.CONFIGS / "models" / "qwen2.5-7b-instruct.yaml"
    assert resources.find_config("nope.yaml") == tmp_path / "nope.yaml"


def test_a_config_outside_the_repo_can_base_on_a_shipped_preset(tmp_path, monkeypatch) -> None:
    from src.config import load_config

    monkeypatch.chdir(tmp_path)
    (tmp_path / "mine.yaml").write_text("bases: [models/qwen3-4b-instruct-2507.yaml]\nseed: 7\n")
    cfg = load_config(tmp_path / "mine.yaml", [])
    assert cfg.model.name == "Qwen/Qwen3-4B-Instruct-2507" and cfg.seed == 7


@pytest.mark.slow
def test_the_wheel_holds_one_package_and_its_shipped_files(tmp_path: Path) -> None:
    """The wheel setuptools builds (offline, with the installed setuptools) puts only ``src/`` into site-packages."""
    res = subprocess.run([sys.executable, "-m", "pip", "wheel", str(REPO), "--no-deps", "--no-build-isolation",
                          "-q", "-w", str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    names = zipfile.ZipFile(next(tmp_path.glob("*.whl"))).namelist()
    tops = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert tops == {"src"}
    for shipped in ("configs/default.yaml", "configs/debug_small.yaml", "configs/models/solar-10.7b-instruct.yaml",
                    "docs/denoise_rules.csv", "docs/typo_rules.csv", "data/debug/train.csv"):
        assert f"src/_shipped/{shipped}" in names, shipped
    entry = next(n for n in names if n.endswith("entry_points.txt"))
    assert "dialsum = src.main:entry_point" in zipfile.ZipFile(next(tmp_path.glob("*.whl"))).read(entry).decode()
