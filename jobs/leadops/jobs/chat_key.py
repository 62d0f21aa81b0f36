"""`leadops chat-key TENANT CHAT_ID`: the Redis key of a chat's memory, for the runbook's LRANGE.

Chat memory keys hold a keyed hash of the chat_id, never the chat_id itself, so finding a
chat's list needs the deployment's key salt (`--salt-file`, default $LEADOPS_KEY_SALT_FILE):

    redis-cli LRANGE "$(leadops chat-key tenant1 chat1)" 0 -1

`--unsalted` names the key a scorer running without a salt (development) writes.
"""

from __future__ import annotations

from pathlib import Path

from leadops import cliutil
from leadops.contract.lead import TENANT
from leadops.pii import chat_keys


def _parser() -> cliutil.ArgumentParser:
    parser = cliutil.ArgumentParser(
        prog="leadops chat-key",
        description="Print the Redis key of a chat's memory list (needs the key salt).",
    )
    parser.add_argument("tenant", metavar="TENANT")
    parser.add_argument("chat_id", metavar="CHAT_ID")
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--salt-file", type=Path, help=f"the key salt (default: ${chat_keys.SALT_FILE_ENV})"
    )
    source.add_argument(
        "--unsalted", action="store_true", help="the key of a scorer that runs without a salt"
    )
    return parser


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    if not TENANT.fullmatch(args.tenant):
        raise cliutil.UsageError(f"TENANT must match {TENANT.pattern}")
    try:
        if args.unsalted:
            salt = None
        elif args.salt_file is not None:
            salt = chat_keys.load_salt(args.salt_file)
        elif (salt := chat_keys.salt_from_env()) is None:
            raise cliutil.UsageError(
                f"no key salt: set {chat_keys.SALT_FILE_ENV} or pass --salt-file "
                "(--unsalted for a scorer without one)"
            )
    except chat_keys.KeySaltError as exc:
        raise cliutil.UsageError(str(exc)) from None
    print(chat_keys.chat_key(args.tenant, args.chat_id, salt=salt))
    return cliutil.EXIT_OK
