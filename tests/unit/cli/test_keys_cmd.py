"""`kling-relay keys ...` and `backfill-status-index` in-process against a moto deployment, checked with the real
authorizer."""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from cli.main import main
from functions.authorizer import handler as authorizer
from shared.repository import schema
from shared.repository.codec import to_attributes
from shared.repository.jobs import JobRepository
from shared.repository.keys import KeyRepository
from shared.runtime import Runtime
from shared.signing import SigningKeys
from tests.fixtures.aws import TABLE
from tests.fixtures.cloud import SIGNING_SECRET, Cloud
from tests.fixtures.jobs import build_job
from tests.support.events import FakeContext, fixture

DEPLOYMENT = ["--table", TABLE, "--signing-secret", "kling-relay/signing"]


def tenant_allowed(api_key: str) -> str | None:
    """The tenant the real authorizer names for `api_key`, or None when it refuses the key."""
    event = fixture("authorizer_request.json")
    event["headers"]["Authorization"] = f"Bearer {api_key}"
    context: Any = FakeContext()
    try:
        policy: dict[str, Any] = authorizer.lambda_handler(event, context)
    except authorizer.Unauthorized:
        return None
    assert policy["policyDocument"]["Statement"][0]["Effect"] == "Allow"
    tenant: str = policy["context"]["tenant_id"]
    return tenant


def create(run: Callable[..., tuple[int, str, str]], tenant: str) -> dict[str, str]:
    code, out, err = run("keys", "create", "--tenant", tenant, "--json", *DEPLOYMENT)
    assert (code, err) == (0, "")
    created: dict[str, str] = json.loads(out)
    return created


def listed(run: Callable[..., tuple[int, str, str]], tenant: str) -> list[dict[str, Any]]:
    code, out, _ = run("keys", "list", "--tenant", tenant, "--json", *DEPLOYMENT)
    assert code == 0
    rows: list[dict[str, Any]] = json.loads(out)
    return rows


def table_items(cloud: Cloud) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = cloud.clients["dynamodb"].scan(TableName=TABLE)["Items"]
    return items


def test_create_prints_a_working_key_and_the_tenants_webhook_secret(
    rt: Runtime, cloud: Cloud, run: Callable[..., tuple[int, str, str]]
) -> None:
    created = create(run, "acme")

    assert set(created) == {
        "api_key",
        "webhook_secret",
        "tenant",
        "key_id",
        "tier",
        "max_active_jobs",
        "monthly_credits",
    }
    assert created["tenant"] == "acme"
    assert (created["tier"], created["max_active_jobs"], created["monthly_credits"]) == ("standard", None, None)
    assert created["api_key"].startswith("kr_")
    assert created["webhook_secret"] == SigningKeys(SIGNING_SECRET).tenant_webhook_secret("acme", 1)
    assert created["webhook_secret"].startswith("whsec_")
    assert tenant_allowed(created["api_key"]) == "acme"
    # Only the key's hash is stored.
    assert created["api_key"] not in json.dumps(table_items(cloud))


def test_a_second_key_is_different_and_shares_the_tenants_webhook_secret(
    rt: Runtime, run: Callable[..., tuple[int, str, str]]
) -> None:
    first = create(run, "acme")
    second = create(run, "acme")
    assert second["api_key"] != first["api_key"]
    assert second["webhook_secret"] == first["webhook_secret"]
    assert tenant_allowed(first["api_key"]) == tenant_allowed(second["api_key"]) == "acme"


def test_create_without_json_prints_the_key_once_with_a_warning(
    rt: Runtime, run: Callable[..., tuple[int, str, str]]
) -> None:
    code, out, _ = run("keys", "create", "--tenant", "acme", *DEPLOYMENT)
    assert code == 0
    lines = dict(line.split(":", 1) for line in out.splitlines() if ":" in line and not line.startswith("The "))
    api_key = lines["api key"].strip()
    assert lines["tenant"].strip() == "acme"
    assert lines["webhook secret"].strip().startswith("whsec_")
    assert "shown only now" in out
    assert tenant_allowed(api_key) == "acme"


def test_list_shows_each_key_oldest_first_and_never_the_key_itself(
    rt: Runtime, run: Callable[..., tuple[int, str, str]]
) -> None:
    first = create(run, "acme")
    second = create(run, "acme")
    create(run, "other")

    rows = listed(run, "acme")

    assert [row["key_id"] for row in rows] == [first["key_id"], second["key_id"]]
    assert all(row["revoked_at"] is None and row["created_at"] for row in rows)
    assert first["api_key"] not in json.dumps(rows)
    code, out, _ = run("keys", "list", "--tenant", "acme", *DEPLOYMENT)
    assert code == 0
    assert [line.split()[0] for line in out.splitlines()] == [first["key_id"], second["key_id"]]
    assert all(line.endswith("active") for line in out.splitlines())


def key_file(tmp_path: Path, api_key: str, *, newline: str = "\n") -> str:
    path = tmp_path / "key"
    path.write_text(api_key + newline, encoding="utf-8")
    return str(path)


def test_revoke_by_key_file_makes_the_authorizer_refuse_it(
    rt: Runtime, run: Callable[..., tuple[int, str, str]], tmp_path: Path
) -> None:
    created = create(run, "acme")
    kept = create(run, "acme")
    assert tenant_allowed(created["api_key"]) == "acme"

    code, out, _ = run("keys", "revoke", "--key-file", key_file(tmp_path, created["api_key"]), *DEPLOYMENT)

    assert (code, out.strip()) == (0, "revoked")
    assert tenant_allowed(created["api_key"]) is None
    assert tenant_allowed(kept["api_key"]) == "acme"
    rows = {row["key_id"]: row for row in listed(run, "acme")}
    assert rows[created["key_id"]]["revoked_at"] is not None
    assert rows[kept["key_id"]]["revoked_at"] is None


def test_revoke_reads_the_key_from_stdin(
    rt: Runtime, run: Callable[..., tuple[int, str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    created = create(run, "acme")
    monkeypatch.setattr("sys.stdin", io.StringIO(created["api_key"] + "\n"))

    code, out, _ = run("keys", "revoke", "--key-file", "-", *DEPLOYMENT)

    assert (code, out.strip()) == (0, "revoked")
    assert tenant_allowed(created["api_key"]) is None


def test_revoke_refuses_a_key_on_the_command_line_and_changes_nothing(
    rt: Runtime, cloud: Cloud, run: Callable[..., tuple[int, str, str]]
) -> None:
    created = create(run, "acme")
    before = table_items(cloud)

    with pytest.raises(SystemExit, match="not taken on the command line"):
        run("keys", "revoke", "--key", created["api_key"], *DEPLOYMENT)

    assert table_items(cloud) == before
    assert tenant_allowed(created["api_key"]) == "acme"
    assert "--key " not in main_help("keys", "revoke")


def main_help(*command: str) -> str:
    buffer = io.StringIO()
    with pytest.raises(SystemExit), contextlib.redirect_stdout(buffer):
        main([*command, "--help"])
    return buffer.getvalue()


@pytest.mark.parametrize(
    "content", ["", "\n", "kr_one kr_two\n", "kr_" + "A" * 5000], ids=["empty", "blank", "two-keys", "huge"]
)
def test_a_key_file_that_is_not_one_key_is_refused(
    rt: Runtime, cloud: Cloud, run: Callable[..., tuple[int, str, str]], tmp_path: Path, content: str
) -> None:
    path = tmp_path / "key"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(SystemExit, match="does not hold exactly one API key"):
        run("keys", "revoke", "--key-file", str(path), *DEPLOYMENT)


def test_a_missing_key_file_is_named(rt: Runtime, run: Callable[..., tuple[int, str, str]], tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match=f"cannot read {tmp_path / 'nope'}"):
        run("keys", "revoke", "--key-file", str(tmp_path / "nope"), *DEPLOYMENT)


def test_revoke_by_tenant_and_key_id(rt: Runtime, run: Callable[..., tuple[int, str, str]]) -> None:
    created = create(run, "acme")
    code, _, _ = run("keys", "revoke", "--tenant", "acme", "--key-id", created["key_id"], *DEPLOYMENT)
    assert code == 0
    assert tenant_allowed(created["api_key"]) is None


def test_revoking_an_unknown_key_fails_with_exit_code_2(
    rt: Runtime, run: Callable[..., tuple[int, str, str]], tmp_path: Path
) -> None:
    code, out, err = run("keys", "revoke", "--key-file", key_file(tmp_path, "kr_" + "A" * 43), *DEPLOYMENT)
    assert (code, out) == (2, "")
    assert err.strip() == "error: no such api key"
    code, _, err = run("keys", "revoke", "--tenant", "acme", "--key-id", "0123456789ab", *DEPLOYMENT)
    assert code == 2
    assert "acme has no key 0123456789ab" in err


def test_revoke_needs_a_key_file_or_a_tenant_and_key_id(rt: Runtime, run: Callable[..., tuple[int, str, str]]) -> None:
    with pytest.raises(SystemExit, match="give --key-file"):
        run("keys", "revoke", "--tenant", "acme", *DEPLOYMENT)


# -- rotate-webhook-secret ------------------------------------------------------------------------------


def test_rotate_prints_the_new_secret_and_bumps_the_version(
    rt: Runtime, keys: KeyRepository, run: Callable[..., tuple[int, str, str]]
) -> None:
    created = create(run, "acme")

    code, out, err = run("keys", "rotate-webhook-secret", "--tenant", "acme", "--json", *DEPLOYMENT)

    assert (code, err) == (0, "")
    rotated = json.loads(out)
    signing = SigningKeys(SIGNING_SECRET)
    assert rotated == {"tenant": "acme", "version": 2, "webhook_secret": signing.tenant_webhook_secret("acme", 2)}
    assert rotated["webhook_secret"] != created["webhook_secret"]
    tenant = keys.get_tenant("acme")
    assert tenant is not None
    assert tenant.webhook_secret_version == 2
    # API keys are untouched; a key created afterwards is told the current secret.
    assert tenant_allowed(created["api_key"]) == "acme"
    assert create(run, "acme")["webhook_secret"] == rotated["webhook_secret"]


def test_rotate_without_json_says_what_changes(rt: Runtime, run: Callable[..., tuple[int, str, str]]) -> None:
    create(run, "acme")
    code, out, _ = run("keys", "rotate-webhook-secret", "--tenant", "acme", *DEPLOYMENT)
    assert code == 0
    lines = dict(line.split(":", 1) for line in out.splitlines() if ":" in line and not line.startswith("Deliver"))
    assert lines["version"].strip() == "2"
    assert lines["webhook secret"].strip() == SigningKeys(SIGNING_SECRET).tenant_webhook_secret("acme", 2)
    assert "signed with this secret only" in out


def test_rotating_an_unknown_tenant_fails_and_creates_nothing(
    rt: Runtime, cloud: Cloud, run: Callable[..., tuple[int, str, str]]
) -> None:
    code, out, err = run("keys", "rotate-webhook-secret", "--tenant", "ghost", *DEPLOYMENT)
    assert (code, out) == (2, "")
    assert err.strip() == "error: no tenant ghost"
    assert table_items(cloud) == []


@pytest.mark.parametrize("tenant", ["acme corp", "a/b", "TENANT#x", "_lead", "-lead", "", "t" * 65])
def test_create_refuses_a_tenant_id_jobs_cannot_be_stored_under(
    rt: Runtime, cloud: Cloud, capsys: pytest.CaptureFixture[str], tenant: str
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["keys", "create", f"--tenant={tenant}", "--json", *DEPLOYMENT])
    assert exited.value.code == 2
    assert "invalid tenant id" in capsys.readouterr().err
    assert table_items(cloud) == []


def test_create_fails_closed_without_a_readable_signing_secret(
    rt: Runtime, cloud: Cloud, run: Callable[..., tuple[int, str, str]]
) -> None:
    code, out, err = run("keys", "create", "--tenant", "acme", "--table", TABLE, "--signing-secret", "missing")
    assert (code, out) == (2, "")
    assert err.strip() == "error: the signing secret cannot be read"
    assert table_items(cloud) == []


def test_the_deployment_comes_from_kr_variables_when_no_flags_are_given(
    rt: Runtime, run: Callable[..., tuple[int, str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KR_TABLE_NAME", TABLE)
    monkeypatch.setenv("KR_SIGNING_SECRET_NAME", "kling-relay/signing")
    code, out, _ = run("keys", "create", "--tenant", "acme", "--json")
    assert code == 0
    assert tenant_allowed(json.loads(out)["api_key"]) == "acme"


def test_without_flags_variables_or_stack_outputs_it_says_so(
    rt: Runtime, cloud: Cloud, run: Callable[..., tuple[int, str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KR_TABLE_NAME", raising=False)
    monkeypatch.delenv("KR_SIGNING_SECRET_NAME", raising=False)
    code, out, err = run("keys", "create", "--tenant", "acme", "--stack", "NoSuchStack")
    assert (code, out) == (2, "")
    assert err.startswith("error: cannot read stack NoSuchStack")
    assert table_items(cloud) == []


def test_backfill_status_index_indexes_jobs_stored_before_it(
    rt: Runtime, jobs: JobRepository, run: Callable[..., tuple[int, str, str]]
) -> None:
    job = jobs.create(build_job(tenant_id="acme")).job
    jobs.client.update_item(
        TableName=TABLE,
        Key=to_attributes({schema.PK: schema.job_pk(job.id), schema.SK: schema.JOB_SK}),
        UpdateExpression="REMOVE #gpk, #gsk",
        ExpressionAttributeNames={"#gpk": schema.GSI2_PK, "#gsk": schema.GSI2_SK},
    )
    assert jobs.list_for_tenant("acme", status=job.status).items == []

    assert run("backfill-status-index", *DEPLOYMENT)[:2] == (0, "jobs indexed by status: 1\n")
    assert [j.id for j in jobs.list_for_tenant("acme", status=job.status).items] == [job.id]
    assert run("backfill-status-index", *DEPLOYMENT)[:2] == (0, "jobs indexed by status: 0\n")
