"""``server``, ``user`` and ``token``: the control plane and who may call it."""

from __future__ import annotations

import ipaddress
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from loopline import launch
from loopline.cli.app import app
from loopline.cli.options import Call, HostOption, PortOption, ProjectOption, command
from loopline.cli.output import Output
from loopline.cli.sdk import api

user_app = typer.Typer(help="Control-plane users and their roles per workspace.", no_args_is_help=True)
token_app = typer.Typer(help="API tokens for the control plane (LOOPLINE_TOKEN).", no_args_is_help=True)
app.add_typer(user_app, name="user")
app.add_typer(token_app, name="token")

UserArgument = Annotated[str, typer.Argument(help="The user's name (letters, digits, '.', '_', '@', '-').")]


@app.command("server")
def server(
    host: HostOption = "127.0.0.1",
    port: PortOption = 8600,
    project: ProjectOption = None,
) -> None:
    """Serve the control plane: every SDK operation over HTTP, with tokens and roles (blocks)."""
    launch.server(host=host, port=port, project=project)


@app.command("ui")
def ui(
    host: HostOption = "127.0.0.1",
    port: PortOption = 8800,
    project: ProjectOption = None,
) -> None:
    """Serve the web dashboard at http://HOST:PORT/ui/ and MLflow's UI for dev at /ui/mlflow/ (blocks)."""
    if not _this_machine_only(host):
        Output(json_mode=False).warn(
            f"warning: the dashboard on {host} has no sign-in: whoever reaches this machine acts as you, "
            "with your stores' credentials (rollbacks, traffic, dev's runs); serve a team with "
            "`loopline server`"
        )
    launch.ui(host=host, port=port, project=project)


def _this_machine_only(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # a host name: whatever it resolves to, say so
        return False


def _roles(roles: dict[str, str]) -> str:
    return ", ".join(f"{role} on {workspace}" for workspace, role in sorted(roles.items())) or "no roles"


@command(user_app, "add")
def user_add(
    call: Call,
    name: UserArgument,
) -> None:
    """Add a user (with no roles until `user grant`); adding an existing user changes nothing."""
    info = api.user_add(name, project=call.project)
    call.emit(info.to_dict(), lambda c: c.print(escape(f"user {info.name}: {_roles(info.roles)}")))


@command(user_app, "list")
def user_list(
    call: Call,
) -> None:
    """Every user and their roles."""
    users = api.user_list(project=call.project)

    def human(console: Console) -> None:
        table = Table("user", "roles", "added")
        for user in users:
            table.add_row(escape(user.name), escape(_roles(user.roles)), f"{user.created_at:%Y-%m-%d}")
        console.print(table)

    call.emit({"users": [u.to_dict() for u in users]}, human)


@command(user_app, "grant")
def user_grant(
    call: Call,
    name: UserArgument,
    role: Annotated[
        str, typer.Option("--role", help="reader, developer, releaser or admin; 'none' takes the role away.")
    ],
    workspace: Annotated[
        str, typer.Option("--workspace", "-w", help="A workspace, 'shared', or '*' for every workspace.")
    ],
) -> None:
    """Set a user's role on a workspace (each role includes the ones below it)."""
    info = api.user_grant(name, None if role == "none" else role, workspace, project=call.project)
    call.emit(info.to_dict(), lambda c: c.print(escape(f"user {info.name}: {_roles(info.roles)}")))


@command(token_app, "create")
def token_create(
    call: Call,
    user: Annotated[str, typer.Option("--user", help="The user the token acts as.")],
    expires: Annotated[
        str | None, typer.Option("--expires", help="Lifetime such as 30d, 12h or 90m (default: none).")
    ] = None,
) -> None:
    """Create an API token; it is shown this once and stored only as a hash."""
    token = api.token_create(user, expires=expires, project=call.project)

    def human(console: Console) -> None:
        until = f"until {token.expires_at:%Y-%m-%d %H:%M} UTC" if token.expires_at else "without expiry"
        console.print(escape(f"token {token.id} for {token.user}, valid {until}; it is shown this once:"))
        console.print(token.secret, soft_wrap=True, markup=False, highlight=False)

    call.emit(token.to_dict(), human)


@command(token_app, "list")
def token_list(
    call: Call,
    user: Annotated[str | None, typer.Option("--user", help="Only this user's tokens.")] = None,
) -> None:
    """Every token's id, user, expiry and revocation (never a secret)."""
    tokens = api.token_list(user, project=call.project)

    def human(console: Console) -> None:
        table = Table("id", "user", "created", "expires", "revoked")
        for t in tokens:
            table.add_row(
                t.id,
                escape(t.user),
                f"{t.created_at:%Y-%m-%d %H:%M}",
                f"{t.expires_at:%Y-%m-%d %H:%M}" if t.expires_at else "-",
                f"{t.revoked_at:%Y-%m-%d %H:%M}" if t.revoked_at else "-",
            )
        console.print(table)

    call.emit({"tokens": [t.to_dict() for t in tokens]}, human)


@command(token_app, "revoke")
def token_revoke(
    call: Call,
    token_id: Annotated[
        str, typer.Argument(help="The token's id (the part after 'll_', as `token list` shows).")
    ],
) -> None:
    """Revoke a token: every call with it is refused from now on."""
    token = api.token_revoke(token_id, project=call.project)
    call.emit(token.to_dict(), lambda c: c.print(escape(f"token {token.id} of {token.user} is revoked")))


@command(app, "locks")
def locks(
    call: Call,
) -> None:
    """Show the locks held now: which release, rollback or inner loop holds what, where, until when."""
    held = api.list_locks(project=call.project)

    def human(console: Console) -> None:
        if not held:
            console.print("no lock is held")
            return
        table = Table(title="Locks", title_justify="left")
        for column in ("lock", "owner", "process", "since", "lease until"):
            table.add_column(column)
        for lock in held:
            table.add_row(
                escape(lock.name),
                escape(lock.owner),
                escape(f"{lock.pid} on {lock.host}"),
                lock.acquired_at.isoformat(timespec="seconds"),
                lock.expires_at.isoformat(timespec="seconds"),
            )
        console.print(table)

    call.emit({"locks": [lock.to_dict() for lock in held]}, human)


@command(app, "unlock")
def unlock(
    call: Call,
    name: Annotated[
        str, typer.Argument(help="The lock's name, as `loopline locks` or a LockTimeout shows it.")
    ],
    reason: Annotated[str | None, typer.Option("--reason", help="Why, for the audit log.")] = None,
) -> None:
    """Break a lock whose holder is gone for good (admin; audited). Its work is not undone: rerun it."""
    broken = api.unlock(name, reason=reason, project=call.project)
    call.emit(
        broken.to_dict(),
        lambda c: c.print(
            escape(f"broke lock {broken.name}, held by {broken.owner} (pid {broken.pid} on {broken.host})")
        ),
    )
