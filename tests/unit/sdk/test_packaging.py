"""The SDK stands alone: a wheel that installs into a fresh venv holding only httpx and pydantic, and works there."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
import tomllib
import zipfile
from importlib import metadata
from pathlib import Path

import kling_relay
import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[3]
SDK = ROOT / "sdk" / "python"
SOURCE = SDK / "src" / "kling_relay"

SMOKE = """
import importlib.util, sys, time
import httpx
import kling_relay
from kling_relay import KlingRelay, webhooks

assert kling_relay.__file__.startswith(sys.prefix), kling_relay.__file__
for server_side in ("shared", "cli", "local", "boto3", "standardwebhooks", "aws_lambda_powertools"):
    assert importlib.util.find_spec(server_side) is None, f"{server_side} is importable in the fresh venv"

job = {
    "id": "job_1", "status": "queued", "provider": "kie", "request": {"prompt": "p"},
    "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z",
}
transport = httpx.MockTransport(lambda request: httpx.Response(202, json=job))
with KlingRelay("https://relay.test/v1", "k", http_client=httpx.Client(transport=transport)) as relay:
    assert relay.jobs.create(prompt="p").status == "queued"

body = b'{"id": "evt_1", "type": "job.queued", "created_at": "2026-01-01T00:00:00Z", "data": %s}' % (
    str(job).replace("'", '"').encode()
)
now = int(time.time())
secret = "whsec_" + "a2V5" * 8
headers = {
    "webhook-id": "evt_1",
    "webhook-timestamp": str(now),
    "webhook-signature": webhooks.sign(body, secret=secret, message_id="evt_1", timestamp=now),
}
assert webhooks.verify(body, headers, secret).data.id == "job_1"
print("ok")
"""


def _closure(names: list[str]) -> set[str]:
    """The distributions these need to run, by their declared requirements (extras left out)."""
    found: set[str] = set()
    pending = list(names)
    while pending:
        name = pending.pop()
        dist = metadata.distribution(name)
        key = dist.metadata["Name"].lower().replace("_", "-")
        if key in found:
            continue
        found.add(key)
        for line in dist.requires or []:
            requirement = Requirement(line)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                pending.append(requirement.name)
    return found


def _copy_distribution(name: str, target: Path) -> None:
    dist = metadata.distribution(name)
    base = Path(str(dist.locate_file("")))
    for file in dist.files or []:
        if file.parts[0] == ".." or "__pycache__" in file.parts:
            continue
        source = base / file
        if source.is_file():
            (target / file).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / file)


def test_the_sdk_imports_nothing_but_the_standard_library_httpx_and_pydantic() -> None:
    allowed = {"httpx", "pydantic", "kling_relay", *sys.stdlib_module_names}
    for path in SOURCE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                roots = {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                roots = {node.module.split(".")[0]}
            else:
                continue
            assert roots <= allowed, f"{path.relative_to(ROOT)} imports {roots - allowed}"


def test_the_declared_dependencies_are_httpx_and_pydantic_and_the_version_is_one() -> None:
    project = tomllib.loads((SDK / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert sorted(Requirement(line).name for line in project["dependencies"]) == ["httpx", "pydantic"]
    assert project["version"] == kling_relay.__version__
    assert (SOURCE / "py.typed").exists()


@pytest.mark.slow
def test_the_wheel_installs_into_a_fresh_venv_with_only_httpx_and_pydantic(tmp_path: Path) -> None:
    source = tmp_path / "source"
    shutil.copytree(SDK, source, ignore=shutil.ignore_patterns("build", "*.egg-info", ".ruff_cache", "__pycache__"))
    wheels = tmp_path / "wheels"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    subprocess.run(
        [*pip, "wheel", "--quiet", "--no-deps", "--no-build-isolation", "--no-index", "-w", str(wheels), str(source)],
        check=True,
        capture_output=True,
    )
    (wheel,) = wheels.glob("kling_relay_sdk-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        requires = [
            line.removeprefix("Requires-Dist: ")
            for line in archive.read(next(n for n in names if n.endswith("/METADATA"))).decode().splitlines()
            if line.startswith("Requires-Dist: ")
        ]
    assert "kling_relay/py.typed" in names
    assert all(name.startswith(("kling_relay/", "kling_relay_sdk-")) for name in names), names
    assert sorted(Requirement(line).name for line in requires) == ["httpx", "pydantic"]

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    # httpx, pydantic and what they require, copied as installed here (the tests run offline).
    dependencies = tmp_path / "dependencies"
    for name in _closure(["httpx", "pydantic"]):
        _copy_distribution(name, dependencies)
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    Path(site, "dependencies.pth").write_text(f"{dependencies}\n", encoding="utf-8")

    subprocess.run(
        [*pip, "--python", str(python), "install", "--quiet", "--no-index", "--no-deps", str(wheel)], check=True
    )
    checked = subprocess.run([*pip, "--python", str(python), "check"], check=False, capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    installed = subprocess.run(
        [*pip, "--python", str(python), "list", "--format=freeze"], check=True, capture_output=True, text=True
    ).stdout
    names_installed = {line.split("==")[0].lower().replace("_", "-") for line in installed.split()}
    assert names_installed == _closure(["httpx", "pydantic"]) | {"kling-relay-sdk"}
    smoke = subprocess.run([str(python), "-I", "-c", SMOKE], check=False, capture_output=True, text=True, cwd=tmp_path)
    assert smoke.returncode == 0, smoke.stdout + smoke.stderr
    assert smoke.stdout.strip() == "ok"
