"""`kling-relay keys create|list|revoke|rotate-webhook-secret`: API keys and tenants' webhook secrets.

An API key is never taken on the command line: argv stays in shell history and is visible to every user of
the machine (`ps`), so `revoke` reads the key from a file or stdin.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from pydantic import TypeAdapter, ValidationError

from cli import deployment
from cli.tenant_args import add_limit_arguments, limits_from, provision_tenant
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
    # The tenant gets its tier's usage plan key (and any caps) before it gets an API key that could be used.
    tenant = provision_tenant(repo, args, limits_from(args))
    new = repo.create_key(args.tenant)
    secret = signing.tenant_webhook_secret(args.tenant, tenant.webhook_secret_version)
    if args.json:
        print(
            json.dumps(
                {
                    "api_key": new.api_key,
                    "webhook_secret": secret,
                    "tenant": args.tenant,
                    "key_id": new.record.key_id,
                    "tier": tenant.tier,
                    "max_active_jobs": tenant.max_active_jobs,
                    "monthly_credits": tenant.monthly_credits,
                }
            )
        )
    else:
        print(f"tenant:          {args.tenant}")
        print(f"tier:            {tenant.tier}")
        print(f"max active jobs: {_cap(tenant.max_active_jobs)}")
        print(f"monthly credits: {_cap(tenant.monthly_credits)}")
        print(f"key id:          {new.record.key_id}")
        print(f"api key:         {new.api_key}")
        print(f"webhook secret:  {secret}")
        print("\nThe API key is shown only now; only its SHA-256 hash is stored.")
    return 0


def _cap(value: float | None) -> str:
    return "unlimited" if value is None else f"{value:g}"


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


KEY_ON_ARGV = (
    "the API key is not taken on the command line (shell history and the process list would keep it): "
    "use --key-file FILE, or --key-file - to read it from stdin"
)
# An API key is 46 characters; a file or pipe much larger than that is not a key file.
MAX_KEY_FILE_BYTES = 4096


def read_key(source: str) -> str:
    """The one key in a file (or stdin for `-`), surrounding whitespace removed."""
    if source == "-":
        text = sys.stdin.read(MAX_KEY_FILE_BYTES + 1)
    else:
        try:
            with Path(source).open(encoding="utf-8") as handle:
                text = handle.read(MAX_KEY_FILE_BYTES + 1)
        except OSError as exc:
            raise SystemExit(f"cannot read {source}: {exc.strerror}") from None
    key = text.strip()
    if not key or len(text) > MAX_KEY_FILE_BYTES or any(char.isspace() for char in key):
        raise SystemExit(f"{'stdin' if source == '-' else source} does not hold exactly one API key")
    return key


def revoke(args: argparse.Namespace) -> int:
    if args.key is not None:
        raise SystemExit(KEY_ON_ARGV)
    if args.key_file is not None:
        key = read_key(args.key_file)
        repo, _ = _repo(args)
        repo.revoke(api_key=key)
    elif args.tenant and args.key_id:
        repo, _ = _repo(args)
        repo.revoke(tenant_id=args.tenant, key_id=args.key_id)
    else:
        raise SystemExit("give --key-file (a file, or - for stdin), or --tenant with --key-id")
    print("revoked")
    return 0


def rotate_webhook_secret(args: argparse.Namespace) -> int:
    """A new webhook secret for the tenant: every delivery from now on is signed with it, and only with it."""
    repo, found = _repo(args)
    signing: SigningKeys = SecretStore("", found.signing_secret_name).signing_keys()
    tenant = repo.rotate_webhook_secret(args.tenant)
    secret = signing.tenant_webhook_secret(args.tenant, tenant.webhook_secret_version)
    if args.json:
        print(json.dumps({"tenant": args.tenant, "version": tenant.webhook_secret_version, "webhook_secret": secret}))
    else:
        print(f"tenant:          {args.tenant}")
        print(f"version:         {tenant.webhook_secret_version}")
        print(f"webhook secret:  {secret}")
        print("\nDeliveries from now on are signed with this secret only; update the app's verifier now.")
    return 0


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    keys = commands.add_parser("keys", help="manage API keys").add_subparsers(dest="keys_command", required=True)
    made = keys.add_parser("create", help="create an API key for a tenant (printed once)")
    made.add_argument("--tenant", required=True, type=tenant_id)
    add_limit_arguments(made)
    made.add_argument("--json", action="store_true")
    made.set_defaults(run=create)
    listed = keys.add_parser("list", help="list a tenant's keys")
    listed.add_argument("--tenant", required=True, type=tenant_id)
    listed.add_argument("--json", action="store_true")
    listed.set_defaults(run=list_keys)
    gone = keys.add_parser("revoke", help="revoke a key (refused by the API within the authorizer cache TTL)")
    gone.add_argument("--key-file", metavar="FILE", help="a file holding the API key, or - to read it from stdin")
    gone.add_argument("--key", help=argparse.SUPPRESS)  # only to say why it is refused
    gone.add_argument("--tenant", type=tenant_id)
    gone.add_argument("--key-id", help="the key id `keys list` shows (not secret)")
    gone.set_defaults(run=revoke)
    rotated = keys.add_parser(
        "rotate-webhook-secret", help="give a tenant a new webhook signing secret (the old one stops at once)"
    )
    rotated.add_argument("--tenant", required=True, type=tenant_id)
    rotated.add_argument("--json", action="store_true")
    rotated.set_defaults(run=rotate_webhook_secret)
    for parser in (made, listed, gone, rotated):
        deployment.add_arguments(parser)
