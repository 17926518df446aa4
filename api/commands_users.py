"""`liuhen users` and `liuhen user ...`: create users, change them, set passwords, deactivate them.

Passwords come from a file (--password-file, its first line), from two prompts on a terminal, or as
one line on standard input when it is not a terminal. They are never taken as a command-line
argument, where other local users could read them in the process list.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from api.cli_times import local_time
from engine import user_admin
from engine.settings import Settings
from engine.users import ROLES

# The changeable fields as `user change` names them, in the order of user_admin.CHANGEABLE_FIELDS; each is a msgid.
FIELD_LABELS = {"display_name": "display name", "roles": "roles", "posts": "posts", "department": "department"}


def _show(out: Any, user: dict[str, Any]) -> None:
    out("{username}  {display_name}  roles: {roles}  posts: {posts}  department: {department}  {state}",
        username=user["username"], display_name=user["display_name"], roles=", ".join(user["roles"]),
        posts=", ".join(user["posts"]) or "-", department=user["department"] or "-",
        state=out.text("active") if user["active"] else out.text("deactivated"))


def read_password(args: argparse.Namespace, out: Any, username: str) -> str | None:
    """Read a new password from --password-file, the terminal or standard input.

    Prints why and returns None when no password could be read.
    """
    if args.password_file:
        path = Path(args.password_file)
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            out.error("{filename}: cannot be read: {reason}.", filename=path, reason=exc.strerror)
            return None
        except UnicodeDecodeError:
            out.error("{filename} is not UTF-8 text; write the password as its first line in UTF-8.", filename=path)
            return None
        password = lines[0] if lines else ""
        if not password:
            out.error("The first line of {filename} is empty; write the password there.", filename=path)
            return None
        return password

    if not sys.stdin.isatty():
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            out.error("No password was given on standard input; send it as one line, use --password-file FILE, "
                      "or run the command in a terminal to be asked for it.")
            return None
        return password

    try:
        first = getpass.getpass(out.text("New password for {username}: ", username=username))
        second = getpass.getpass(out.text("Repeat the password: "))
    except (EOFError, KeyboardInterrupt):
        out.error("Cancelled; nothing was changed.")
        return None
    if first != second:
        out.error("The two passwords differ; nothing was changed. Run the command again.")
        return None
    return first


def cmd_list(args: argparse.Namespace, settings: Settings, out: Any) -> int:
    from api.cli import _cli_actor, _service

    service = _service(settings)
    rows = user_admin.list_users(service, _cli_actor(service, args.as_user))
    if not args.all:
        rows = [user for user in rows if user["active"]]
    if not rows:
        out("No users; create one with `liuhen user add USERNAME --name NAME --role ROLE`.")
        return 0
    for user in rows:
        _show(out, user)
        out("  created {created_at}", created_at=local_time(user["created_at"]))
    return 0


def cmd_add(args: argparse.Namespace, settings: Settings, out: Any) -> int:
    from api.cli import _cli_actor, _service

    service = _service(settings)
    admin = _cli_actor(service, args.as_user)
    fields = {"username": args.username, "display_name": args.name, "roles": args.role or [],
              "posts": args.post or [], "department": args.department}
    # Check the other fields first, so the administrator never types a password twice only to learn that
    # the username was taken.
    user_admin.check_new_user(service, admin, **fields)
    password = read_password(args, out, args.username)
    if password is None:
        return 1
    user = user_admin.add_user(service, admin, password=password, **fields)
    out("User {username} is created.", username=user["username"])
    _show(out, user)
    return 0


def cmd_change(args: argparse.Namespace, settings: Settings, out: Any) -> int:
    from api.cli import _cli_actor, _service

    service = _service(settings)
    changes = user_admin.UserChanges(display_name=args.name, roles=args.role,
                                     posts=[] if args.no_posts else args.post, department=args.department)
    user, changed = user_admin.change_user(service, _cli_actor(service, args.as_user), args.username, changes)
    if changed:
        labels = []
        for name, label in FIELD_LABELS.items():
            if name in changed:
                labels.append(out.text(label))
        out("User {username} is changed: {fields}.", username=user["username"], fields=", ".join(labels))
    else:
        out("User {username} already has these values; nothing changed.", username=user["username"])
    _show(out, user)
    return 0


def cmd_password(args: argparse.Namespace, settings: Settings, out: Any) -> int:
    from api.cli import _cli_actor, _service

    service = _service(settings)
    admin = _cli_actor(service, args.as_user)
    user = user_admin.get_user(service, admin, args.username)
    password = read_password(args, out, user["username"])
    if password is None:
        return 1
    user_admin.set_user_password(service, admin, user["username"], password)
    out("The password of {username} is changed; their earlier logins are signed out.", username=user["username"])
    return 0


def cmd_deactivate(args: argparse.Namespace, settings: Settings, out: Any) -> int:
    from api.cli import _cli_actor, _service

    service = _service(settings)
    user = user_admin.deactivate_user(service, _cli_actor(service, args.as_user), args.username)
    out("User {username} is deactivated and can no longer sign in; `liuhen user reactivate {username}` undoes "
        "this.", username=user["username"])
    return 0


def cmd_reactivate(args: argparse.Namespace, settings: Settings, out: Any) -> int:
    from api.cli import _cli_actor, _service

    service = _service(settings)
    user = user_admin.reactivate_user(service, _cli_actor(service, args.as_user), args.username)
    out("User {username} is active again and can sign in.", username=user["username"])
    return 0


def register(add: Callable[..., argparse.ArgumentParser], t: Callable[[str], str]) -> None:
    listing = add("users", cmd_list, t("List the active users with their roles, posts and departments."))
    listing.add_argument("--all", action="store_true", help=t("List deactivated users too."))
    listing.add_argument("--as", dest="as_user", help=t("Administrator to list the users as."))

    # Each action below sets its own handler, which replaces this one.
    user = add("user", cmd_list, t("Create users, change their roles and posts, set passwords, deactivate them."))
    actions = user.add_subparsers(dest="user_action", required=True, metavar="ACTION")

    def action(name: str, handler: Callable[..., int], help_text: str) -> argparse.ArgumentParser:
        parser = actions.add_parser(name, help=help_text, description=help_text)
        parser.set_defaults(handler=handler)
        parser.add_argument("username", metavar="USERNAME")
        parser.add_argument("--as", dest="as_user", help=t("Administrator to record the change against."))
        return parser

    roles_help = t("A role of the user. Repeat the option for several roles.")
    password_help = t("Read the password from the first line of this file instead of asking for it.")

    create = action("add", cmd_add, t("Create a user. Without --password-file, the password is asked for twice, "
                                      "or read as one line from standard input when that is not a terminal."))
    create.add_argument("--name", required=True, help=t("The display name, such as 张伟."))
    create.add_argument("--role", action="append", required=True, choices=list(ROLES), help=roles_help)
    create.add_argument("--post", action="append", help=t("A post (the lane name in the flowcharts), such as "
                                                         "财务室. Repeat the option for several posts."))
    create.add_argument("--department", help=t("The department, such as 财务室."))
    create.add_argument("--password-file", metavar="FILE", help=password_help)

    change = action("change", cmd_change, t("Change the display name, roles, posts or department of a user; "
                                            "each option given replaces the stored value."))
    change.add_argument("--name", help=t("The new display name."))
    change.add_argument("--role", action="append", choices=list(ROLES), help=roles_help)
    posts = change.add_mutually_exclusive_group()
    posts.add_argument("--post", action="append", help=t("A post. Repeat the option for several posts."))
    posts.add_argument("--no-posts", action="store_true", help=t("Remove every post of the user."))
    change.add_argument("--department", help=t("The new department; an empty value removes it."))

    password = action("password", cmd_password, t("Set a new password for a user and sign out their earlier "
                                                  "logins."))
    password.add_argument("--password-file", metavar="FILE", help=password_help)

    action("deactivate", cmd_deactivate, t("Deactivate a user: they can no longer sign in or act."))
    action("reactivate", cmd_reactivate, t("Let a deactivated user sign in again."))
