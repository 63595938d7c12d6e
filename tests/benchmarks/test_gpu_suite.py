"""benchmarks/gpu_suite.sh: its --tiny mode runs every step on a CPU and writes the figures as JSON under --out;
missing packages come from the wheel folder into the work folder only; bad arguments are one line and exit 2."""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import REPO, SHARED, need_shared

SUITE = REPO / "benchmarks" / "gpu_suite.sh"


def run_suite(*args: str, cwd: Path = REPO, timeout: int = 900) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHON": sys.executable, "HF_HUB_OFFLINE": "1"}
    return subprocess.run(["bash", str(SUITE), *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)


def fake_wheel(folder: Path, name: str = "liger_kernel", version: str = "0.0.1") -> Path:
    """A minimal pure-Python wheel of ``name`` (a module that only says what it is)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}-{version}-py3-none-any.whl"
    info = f"{name}-{version}.dist-info"
    files = {f"{name}/__init__.py": "FAKE = True\n",
             f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name.replace('_', '-')}\nVersion: {version}\n",
             f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}
    files[f"{info}/RECORD"] = "".join(f"{p},,\n" for p in files) + f"{info}/RECORD,,\n"
    with zipfile.ZipFile(path, "w") as zf:
        for p, text in files.items():
            zf.writestr(p, text)
    return path


@pytest.mark.parametrize("args, expected", [
    (["--bogus"], "unknown argument '--bogus'"),
    (["--wheels", "/no/such/folder"], "--wheels /no/such/folder: no such folder"),
    (["--out"], "--out needs a folder"),
])
def test_bad_arguments_are_one_line_and_exit_2(args: list[str], expected: str) -> None:
    res = run_suite(*args, timeout=60)
    assert res.returncode == 2 and expected in res.stderr and res.stdout == ""


def test_missing_shared_folder_is_named(tmp_path: Path) -> None:
    res = run_suite("--shared", str(tmp_path), "--out", str(tmp_path / "out"), timeout=60)
    assert res.returncode == 2 and f"no tokenizers/ and data/ under {tmp_path}" in res.stderr


@pytest.mark.slow  # every step of the suite on tiny shapes: ~2.5 minutes on 2 cores
def test_tiny_mode_runs_every_step_and_writes_json(tmp_path: Path) -> None:
    need_shared(SHARED / "tokenizers" / "solar-10.7b-instruct")
    if importlib.util.find_spec("liger_kernel") is not None:
        pytest.skip("liger_kernel is installed here: the wheel-folder install is not needed")
    fake_wheel(tmp_path / "wheels")
    # relative --out/--work/--wheels, from a folder that is not the repository
    res = run_suite("--tiny", "--wheels", "wheels", "--out", "out", "--work", "work", cwd=tmp_path)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    out = tmp_path / "out"
    suite = json.loads((out / "suite.json").read_text(encoding="utf-8"))
    assert suite["ok"] is True and suite["tiny"] is True and suite["machine"].startswith("CPU")
    assert [s["name"] for s in suite["steps"]] == ["wheels", "doctor", "gpu_train-solar-10.7b",
                                                   "gpu_train-llama-3.2-3b", "gpu_generate"]
    assert all(s["rc"] == 0 for s in suite["steps"])
    doctor = json.loads((out / "doctor.json").read_text(encoding="utf-8"))
    assert doctor["ok"] is True and {c["name"]: c["status"] for c in doctor["checks"]}["smoke"] == "pass"
    for shape in ("solar-10.7b", "llama-3.2-3b"):
        train = json.loads((out / f"gpu_train-{shape}.json").read_text(encoding="utf-8"))
        assert train["shape"] == shape and set(train["results"]) == {"padded", "default"}
        assert all(r["tokens_per_s"] > 0 for r in train["results"].values()) and train["projected_minutes"] > 0
    generate = json.loads((out / "gpu_generate.json").read_text(encoding="utf-8"))["results"]
    assert set(generate) == {"transformers", "transformers_4bit"}
    assert all(r["dialogues"] == 8 and r["generated_tokens"] > 0 for r in generate.values())
    # the missing package came from the wheel folder into the work folder, not into this environment
    assert "liger-kernel: installed from" in (out / "wheels.log").read_text(encoding="utf-8")
    assert (tmp_path / "work" / "site" / "liger_kernel" / "__init__.py").is_file()
    assert importlib.util.find_spec("liger_kernel") is None
    # --out holds logs and JSON only: the models stay in --work
    assert {p.suffix for p in out.iterdir()} == {".json", ".log"}
