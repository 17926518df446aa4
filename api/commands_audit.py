"""Auditor commands: signed checkpoints, verification against a kept checkpoint, inclusion proofs.

Also the administrators' `keys` commands, which list and rotate the key that signs checkpoints.
`audit check-proof` needs no database, so a third party can run it on a proof file alone.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from api.cli_times import SECONDS, local_time
from engine import audit, signing, signing_keys
from engine.audit_verify import SigningKeyTrust, verify_checkpoint
from engine.errors import InvalidInput
from engine.i18n import Message
from engine.service import Liuhen
from engine.settings import Settings

if TYPE_CHECKING:
    from api.cli import Output

AddCommand = Callable[[str, Callable[..., int], str], argparse.ArgumentParser]
Translate = Callable[..., str]


class _FileError(Exception):
    """A file named on the command line could not be read or written; the message is already printed."""


def register(add: AddCommand, t: Translate) -> None:
    checkpoint = _group(add, "checkpoint", t("Create signed checkpoints of the whole trace."))
    create = _action(checkpoint, "create", cmd_checkpoint_create,
                     t("Seal new trace events and sign the Merkle root over all of them."))
    create.add_argument("--output", metavar="FILE",
                        help=t("Write the checkpoint JSON to this file instead of printing it."))

    keys = _group(add, "keys", t("Manage the key that signs checkpoints."))
    export = _action(keys, "export-public", cmd_keys_export_public,
                     t("Print or write the public key that checks checkpoint signatures."))
    export.add_argument("--output", metavar="FILE", help=t("Write the PEM public key to this file."))
    listing = _action(keys, "list", cmd_keys_list,
                      t("List the signing keys, the active one first, with fingerprints and checkpoint counts."))
    listing.add_argument("--json", action="store_true",
                         help=t("Print the keys as JSON, with the fields of GET /api/admin/keys."))
    listing.add_argument("--as", dest="as_user", help=t("Administrator to list the keys as."))
    rotate = _action(keys, "rotate", cmd_keys_rotate,
                     t("Replace the signing key with a new one; checkpoints of the retired key stay verifiable."))
    rotate.add_argument("--as", dest="as_user", help=t("Administrator to record the rotation against."))

    audit_command = _group(add, "audit", t("Verify the trace against kept checkpoints and prove single events."))
    verify = _action(audit_command, "verify", cmd_audit_verify,
                     t("Verify the whole trace against a checkpoint kept outside the system."))
    verify.add_argument("--checkpoint", metavar="FILE", required=True, help=t("The checkpoint JSON file."))
    verify.add_argument("--public-key", metavar="FILE", action="append", default=[],
                        help=t("A PEM public key to trust besides the instance key; may be repeated."))
    prove = _action(audit_command, "prove", cmd_audit_prove,
                    t("Write a proof, checkable offline, that one trace event is in a signed checkpoint."))
    prove.add_argument("event_id", type=int, metavar="EVENT_ID", help=t("Id of the trace event."))
    prove.add_argument("--output", metavar="FILE", help=t("Write the proof JSON to this file instead of printing it."))
    check = _action(audit_command, "check-proof", cmd_audit_check_proof,
                    t("Check an inclusion proof file without a database."))
    check.add_argument("proof", metavar="FILE", help=t("The proof JSON file."))
    check.add_argument("--public-key", metavar="FILE", action="append", default=[],
                       help=t("A PEM public key the checkpoint must be signed with; may be repeated."))


def _group(add: AddCommand, name: str, help_text: str) -> argparse._SubParsersAction:
    # The group's own handler never runs, because choosing an action is required.
    parser = add(name, _no_action, help_text)
    return parser.add_subparsers(dest=f"{name}_action", required=True, metavar="ACTION")


def _action(group: argparse._SubParsersAction, name: str, handler: Callable[..., int],
            help_text: str) -> argparse.ArgumentParser:
    parser = group.add_parser(name, help=help_text, description=help_text)
    parser.set_defaults(handler=handler)
    return parser


def _no_action(args: argparse.Namespace, settings: Settings, out: Output) -> int:
    return 2


def _service(settings: Settings) -> Liuhen:
    service = Liuhen(settings)
    service.db.check_migrated()
    return service


def cmd_checkpoint_create(args: argparse.Namespace, settings: Settings, out: Output) -> int:
    service = _service(settings)
    try:
        document = audit.create_checkpoint(service)
        if not _emit_json(document, args.output, out):
            return 0
    except _FileError:
        return 1
    finally:
        service.db.dispose()
    out("Checkpoint of {size} trace events written to {path}: root {root}, key {key_id}, signed at {created_at}. "
        "Keep this file outside the system.", size=document["size"], path=args.output, root=document["root"],
        key_id=document["key_id"], created_at=local_time(document["created_at"], SECONDS))
    return 0


def cmd_keys_export_public(args: argparse.Namespace, settings: Settings, out: Output) -> int:
    private_key = signing.load_or_create_private_key(settings.resolved_signing_key_path())
    public_key = private_key.public_key()
    pem = signing.public_key_pem(public_key)
    if args.output is None:
        print(pem, end="")
        return 0
    try:
        _write(Path(args.output), pem, out)
    except _FileError:
        return 1
    out("Public key {key_id} written to {path}.", key_id=signing.key_id(public_key), path=args.output)
    return 0


def cmd_keys_list(args: argparse.Namespace, settings: Settings, out: Output) -> int:
    from api.cli import _cli_actor

    service = _service(settings)
    try:
        keys = signing_keys.list_keys(service, _cli_actor(service, args.as_user))
    finally:
        service.db.dispose()
    if args.json:
        print(json.dumps(keys, ensure_ascii=False, indent=2))
        return 0
    if not keys:
        out("No signing key exists yet; the first checkpoint creates one.")
        return 0
    for key in keys:
        status = out.text("active") if key["status"] == signing_keys.ACTIVE else out.text("retired")
        if key["generated_on_first_use"]:
            out("{key_id}  {status}  generated by the system on first use, {created_at}  checkpoints: {checkpoints}",
                key_id=key["key_id"], status=status, created_at=local_time(key["created_at"]),
                checkpoints=key["checkpoints"])
        else:
            out("{key_id}  {status}  created {created_at} by {created_by}  checkpoints: {checkpoints}",
                key_id=key["key_id"], status=status, created_at=local_time(key["created_at"]),
                created_by=key["created_by"] or "-", checkpoints=key["checkpoints"])
        if key["retired_at"] is not None:
            out("  retired {retired_at} by {retired_by}", retired_at=local_time(key["retired_at"]),
                retired_by=key["retired_by"] or "-")
        out("  SHA-256 fingerprint: {fingerprint}", fingerprint=key["fingerprint"] or "-")
    return 0


def cmd_keys_rotate(args: argparse.Namespace, settings: Settings, out: Output) -> int:
    from api.cli import _cli_actor

    service = _service(settings)
    try:
        key = signing_keys.rotate_key(service, _cli_actor(service, args.as_user))
    finally:
        service.db.dispose()
    out("The signing key was rotated. New checkpoints are signed with key {key_id}.", key_id=key["key_id"])
    out("  SHA-256 fingerprint: {fingerprint}", fingerprint=key["fingerprint"])
    if key["previous_key_id"] is not None:
        retired_file = signing_keys.retired_keys_path(settings.resolved_signing_key_path())
        out("The retired key {key_id} stays trusted for `liuhen audit verify`: its public key is kept in {path}.",
            key_id=key["previous_key_id"], path=retired_file)
    return 0


def cmd_audit_verify(args: argparse.Namespace, settings: Settings, out: Output) -> int:
    try:
        document = _read_json(Path(args.checkpoint), out)
        trusted = _read_public_keys(args.public_key, out)
    except _FileError:
        return 1
    service = _service(settings)
    try:
        report = verify_checkpoint(service, document, trusted)
    except InvalidInput as exc:
        out.error("{filename}: {message}", filename=args.checkpoint, message=exc.render(out.locale))
        return 1
    finally:
        service.db.dispose()

    checkpoint = report.checkpoint
    for problem in report.problems:
        _print_problem(problem.kind, problem.message, out)
    if not report.ok:
        out.error("Verification against the checkpoint of {size} events failed with {count} problems.",
                  size=checkpoint.size, count=len(report.problems))
        return 1
    out("Verified against the checkpoint of {size} events signed by key {key_id} at {created_at}: every event it "
        "covers is unchanged and in order, and the audit log of {log_size} entries only grew since.",
        size=checkpoint.size, key_id=checkpoint.key_id, created_at=local_time(checkpoint.created_at, SECONDS),
        log_size=report.log_size)
    if report.signing_key is not None:
        _print_signing_key(report.signing_key, settings, out)
    out("All {streams} trace streams have intact hash chains. Events not sealed into a checkpoint yet: {pending}.",
        streams=report.streams, pending=report.pending)
    return 0


def cmd_audit_prove(args: argparse.Namespace, settings: Settings, out: Output) -> int:
    service = _service(settings)
    try:
        document = audit.prove(service, args.event_id)
        if not _emit_json(document, args.output, out):
            return 0
    except _FileError:
        return 1
    finally:
        service.db.dispose()
    event, checkpoint = document["event"], document["checkpoint"]
    out("Proof that trace event {event_id} ({stream} #{seq}) is in the checkpoint of {size} events written to "
        "{path}.", event_id=event["id"], stream=event["stream"], seq=event["seq"], size=checkpoint["size"],
        path=args.output)
    return 0


def cmd_audit_check_proof(args: argparse.Namespace, settings: Settings, out: Output) -> int:
    try:
        document = _read_json(Path(args.proof), out)
        trusted = _read_public_keys(args.public_key, out)
    except _FileError:
        return 1
    try:
        result = audit.check_proof(document, trusted)
    except InvalidInput as exc:
        out.error("{filename}: {message}", filename=args.proof, message=exc.render(out.locale))
        return 1

    checkpoint = result.checkpoint
    for problem in result.problems:
        _print_problem(problem.kind, problem.message, out)
    if not result.ok:
        out.error("The proof is invalid: {count} problems.", count=len(result.problems))
        return 1
    out("The proof is valid: trace event {event_id} ({stream} #{seq}) is at log position {position} of {size} "
        "events, whose root {root} was signed by key {key_id} at {created_at}.", event_id=result.event_id,
        stream=result.stream, seq=result.seq, position=result.position, size=checkpoint.size, root=checkpoint.root,
        key_id=checkpoint.key_id, created_at=local_time(checkpoint.created_at, SECONDS))
    if not trusted:
        out("No --public-key was given, so only the key inside the file was used: compare key id {key_id} with "
            "the one the system published.", key_id=checkpoint.key_id)
    return 0


def _print_signing_key(trust: SigningKeyTrust, settings: Settings, out: Output) -> None:
    if trust.status == signing_keys.ACTIVE:
        out("Key {key_id} is the active signing key of this instance.", key_id=trust.key_id)
    elif trust.status == signing_keys.RETIRED:
        out("Key {key_id} is a retired signing key of this instance, trusted through {path}.", key_id=trust.key_id,
            path=signing_keys.retired_keys_path(settings.resolved_signing_key_path()))
    else:
        out("Key {key_id} is trusted because it was given with --public-key.", key_id=trust.key_id)


def _print_problem(kind: str, message: Message, out: Output) -> None:
    out.error("[{kind}] {message}", kind=kind, message=message.render(out.locale))


def _emit_json(document: dict[str, Any], output: str | None, out: Output) -> bool:
    """Write ``document`` to ``output``, or print it when no file is given; returns whether a file was written."""
    text = json.dumps(document, ensure_ascii=False, indent=2) + "\n"
    if output is None:
        print(text, end="")
        return False
    _write(Path(output), text, out)
    return True


def _write(path: Path, text: str, out: Output) -> None:
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        out.error("{path} cannot be written: {reason}.", path=path, reason=exc.strerror)
        raise _FileError from exc


def _read_json(path: Path, out: Output) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        out.error("{filename}: cannot be read: {reason}.", filename=path, reason=exc.strerror)
        raise _FileError from exc
    except ValueError as exc:
        out.error("{filename} is not valid JSON: {reason}.", filename=path, reason=str(exc))
        raise _FileError from exc


def _read_public_keys(paths: list[str], out: Output) -> list[Ed25519PublicKey]:
    keys = []
    for name in paths:
        try:
            pem = Path(name).read_text(encoding="ascii")
        except (OSError, UnicodeDecodeError) as exc:
            out.error("{filename}: cannot be read: {reason}.", filename=name,
                      reason=getattr(exc, "strerror", None) or str(exc))
            raise _FileError from exc
        try:
            keys.append(signing.parse_public_key(pem, name))
        except InvalidInput as exc:
            out.error("{filename}: {message}", filename=name, message=exc.render(out.locale))
            raise _FileError from exc
    return keys
