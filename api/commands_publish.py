"""`liuhen publish`: publish a version, withdraw it, or write the public pages as a static site."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine import publication
from engine.settings import Settings


def _parse_target(target: str) -> tuple[str, int | None]:
    process_id, _, version = target.partition("@")
    return process_id, int(version) if version.isdigit() else None


def cmd_publish(args: argparse.Namespace, settings: Settings, out: Any) -> int:
    from api.cli import _cli_actor, _service

    service = _service(settings)
    if args.output:
        from api.static_site import write_site

        written = write_site(service, Path(args.output), out.locale)
        out("Wrote the public site to {folder} ({count} files).", folder=args.output, count=len(written))
        return 0
    if not args.process:
        out.error("Name a process to publish (PROCESS[@VERSION]) or give --output DIR for the static site.")
        return 2
    process_id, version = _parse_target(args.process)
    if version is None:
        version = service.get_definition(process_id)["version"]
    actor = _cli_actor(service, args.as_user)
    if args.withdraw:
        publication.withdraw(service, process_id, actor)
        out("Withdrew {process_id} from the public pages.", process_id=process_id)
        return 0
    item = publication.publish(service, process_id, version, actor)
    out("Published {process_id} version {version}.", process_id=item.process_id, version=item.version)
    return 0


def register(add: Callable[..., argparse.ArgumentParser], t: Callable[[str], str]) -> None:
    command = add("publish", cmd_publish, t("Publish a flowchart version, withdraw it, or write the static site."))
    command.add_argument("process", nargs="?", metavar="PROCESS[@VERSION]")
    command.add_argument("--withdraw", action="store_true", help=t("Take the process off the public pages."))
    command.add_argument("--output", metavar="DIR", help=t("Write the public pages as a static site into DIR."))
    command.add_argument("--as", dest="as_user", help=t("Administrator to record as publisher."))
