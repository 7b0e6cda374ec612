"""`kling-relay keys create|list|revoke`: API keys and tenants' webhook secrets."""

from __future__ import annotations

import argparse
import json

from pydantic import TypeAdapter, ValidationError

from cli import deployment
from shared.models.common import TenantId
from shared.repository.keys import KeyRepository
from shared.secrets import SecretStore
from shared.signing import SigningKeys

_TENANT_ID: TypeAdapter[str] = TypeAdapter(TenantId)


def tenant_id(value: str) -> str:
    """A tenant id jobs can be stored under; any other would make every job submission fail."""
    try:
        return _TENANT_ID.validate_python(value)
    except ValidationError as exc:
        raise argparse.ArgumentTypeError(
            f"invalid tenant id {value!r}: 1-64 letters, digits, '_', '.' or '-', starting with a letter or digit"
        ) from exc


def _repo(args: argparse.Namespace) -> tuple[KeyRepository, deployment.Deployment]:
    found = deployment.resolve(args)
    return KeyRepository(found.table_name), found


def create(args: argparse.Namespace) -> int:
    repo, found = _repo(args)
    signing: SigningKeys = SecretStore("", found.signing_secret_name).signing_keys()
    new = repo.create_key(args.tenant)
    tenant = repo.get_tenant(args.tenant)
    version = tenant.webhook_secret_version if tenant else 1
    secret = signing.tenant_webhook_secret(args.tenant, version)
    if args.json:
        print(
            json.dumps(
                {"api_key": new.api_key, "webhook_secret": secret, "tenant": args.tenant, "key_id": new.record.key_id}
            )
        )
    else:
        print(f"tenant:          {args.tenant}")
        print(f"key id:          {new.record.key_id}")
        print(f"api key:         {new.api_key}")
        print(f"webhook secret:  {secret}")
        print("\nThe API key is shown only now; only its SHA-256 hash is stored.")
    return 0


def list_keys(args: argparse.Namespace) -> int:
    repo, _ = _repo(args)
    rows = [
        {
            "key_id": rec.key_id,
            "created_at": rec.created_at.isoformat(),
            "revoked_at": rec.revoked_at.isoformat() if rec.revoked_at else None,
        }
        for _, rec in repo.list_keys(args.tenant)
    ]
    if args.json:
        print(json.dumps(rows))
    else:
        for row in rows:
            state = f"revoked {row['revoked_at']}" if row["revoked_at"] else "active"
            print(f"{row['key_id']}  created {row['created_at']}  {state}")
    return 0


def revoke(args: argparse.Namespace) -> int:
    repo, _ = _repo(args)
    if args.key:
        repo.revoke(api_key=args.key)
    elif args.tenant and args.key_id:
        repo.revoke(tenant_id=args.tenant, key_id=args.key_id)
    else:
        raise SystemExit("give --key, or --tenant with --key-id")
    print("revoked")
    return 0


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    keys = commands.add_parser("keys", help="manage API keys").add_subparsers(dest="keys_command", required=True)
    made = keys.add_parser("create", help="create an API key for a tenant (printed once)")
    made.add_argument("--tenant", required=True, type=tenant_id)
    made.add_argument("--json", action="store_true")
    made.set_defaults(run=create)
    listed = keys.add_parser("list", help="list a tenant's keys")
    listed.add_argument("--tenant", required=True, type=tenant_id)
    listed.add_argument("--json", action="store_true")
    listed.set_defaults(run=list_keys)
    gone = keys.add_parser("revoke", help="revoke a key")
    gone.add_argument("--key", help="the API key itself")
    gone.add_argument("--tenant", type=tenant_id)
    gone.add_argument("--key-id")
    gone.set_defaults(run=revoke)
    for parser in (made, listed, gone):
        deployment.add_arguments(parser)
