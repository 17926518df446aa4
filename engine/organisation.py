"""The organisation at a glance: departments and roles with their users, and posts with holders and flowcharts.

Departments and posts are attributes of users. Posts are also the lanes of the deployed flowcharts, so
a lane is a post that a flowchart needs: its human steps become tasks that only active staff holding
the post can claim. A needed post without such a holder is flagged, because nobody could take its tasks.

A flowchart needs the lanes of the newest version of each process, and of every older version that
still has running cases, because those cases stay on the version they started with.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from engine.db import case_tasks, cases, definitions, users
from engine.extension import HUMAN_TASK_KINDS
from engine.users import ROLES, Actor, require_role

if TYPE_CHECKING:
    from engine.service import Liuhen

# The roles that may read the overview. Auditors check who could handle which steps.
READERS = ("admin", "auditor")
# Task statuses that still wait for a holder of the lane's post.
OPEN_TASK_STATUSES = ("ready", "claimed")

_VERSIONS = (select(definitions.c.id, definitions.c.process_id, definitions.c.version, definitions.c.name)
             .order_by(definitions.c.process_id, definitions.c.version))
_RUNNING_CASES = (select(cases.c.definition_id, func.count().label("total"))
                  .where(cases.c.status == "running").group_by(cases.c.definition_id))
_OPEN_TASKS = (select(case_tasks.c.lane, func.count().label("total"))
               .where(case_tasks.c.status.in_(OPEN_TASK_STATUSES), case_tasks.c.lane.is_not(None))
               .group_by(case_tasks.c.lane))


@dataclass
class LaneNeed:
    """One process whose deployed versions have human steps in a lane."""

    process_id: str
    process_name: str
    versions: list[int] = field(default_factory=list)
    steps: list[str] = field(default_factory=list)
    running_cases: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"process_id": self.process_id, "process_name": self.process_name, "versions": self.versions,
                "steps": self.steps, "running_cases": self.running_cases}


def organisation_overview(service: Liuhen, actor: Actor) -> dict[str, Any]:
    """Return departments, roles and posts with their users, the flowcharts needing each post, and unheld posts.

    Raises Forbidden unless ``actor`` is an administrator or an auditor.
    """
    require_role(actor, *READERS)
    with service.db.snapshot() as conn:
        people = [_person(row) for row in conn.execute(select(users).order_by(users.c.username))]
        versions = conn.execute(_VERSIONS).all()
        running: dict[int, int] = {row.definition_id: row.total for row in conn.execute(_RUNNING_CASES)}
        open_tasks: dict[str, int] = {row.lane: row.total for row in conn.execute(_OPEN_TASKS)}
    # Parsing reads the stored files through connections of its own, so it runs after the snapshot.
    needs = _lane_needs(service, _needed_versions(versions, running), running)

    posts = sorted({post for person in people for post in person["posts"]} | set(needs))
    post_rows = [_post_row(post, people, needs.get(post, {}), open_tasks.get(post, 0)) for post in posts]
    return {
        "departments": _departments(people),
        "roles": [{"role": role, "users": [person for person in people if role in person["roles"]]}
                  for role in ROLES],
        "posts": post_rows,
        "unheld_posts": [row["name"] for row in post_rows if row["unheld"]],
    }


def _person(row: Any) -> dict[str, Any]:
    return {"username": row.username, "display_name": row.display_name, "roles": list(row.roles),
            "posts": list(row.posts), "department": row.department, "active": bool(row.active)}


def _needed_versions(versions: Sequence[Any], running: dict[int, int]) -> list[Any]:
    """Keep the newest version of each process and the older ones that still have running cases."""
    newest: dict[str, Any] = {}
    for row in versions:
        newest[row.process_id] = row
    return [row for row in versions if newest[row.process_id] is row or running.get(row.id)]


def _lane_needs(service: Liuhen, versions: list[Any], running: dict[int, int]) -> dict[str, dict[str, LaneNeed]]:
    """Map each lane name to the processes whose human steps use it, keyed by process id."""
    needs: dict[str, dict[str, LaneNeed]] = {}
    for row in versions:
        parsed, process = service.parsed_definition(row.id)
        # A file can hold several processes; only the elements of this one count.
        element_ids = set(process.spec.task_specs)
        for subprocess in process.subprocess_specs.values():
            element_ids.update(subprocess.task_specs)
        lanes_seen: set[str] = set()
        for node in parsed.nodes.values():
            if node.lane is None or node.kind not in HUMAN_TASK_KINDS or node.element_id not in element_ids:
                continue
            need = needs.setdefault(node.lane, {}).setdefault(row.process_id, LaneNeed(row.process_id, row.name))
            need.process_name = row.name
            if row.version not in need.versions:
                need.versions.append(row.version)
            step = node.name or node.element_id
            if step not in need.steps:
                need.steps.append(step)
            if node.lane not in lanes_seen:
                need.running_cases += running.get(row.id, 0)
                lanes_seen.add(node.lane)
    return needs


def _post_row(post: str, people: list[dict[str, Any]], needs: dict[str, LaneNeed], open_tasks: int) -> dict[str, Any]:
    holders = [person for person in people if post in person["posts"]]
    # Only active business staff can claim tasks, so only they count as holders who can take the post's tasks.
    able = [person for person in holders if person["active"] and "staff" in person["roles"]]
    return {
        "name": post,
        "holders": holders,
        "active_holders": len(able),
        "needed_by": [need.to_json() for _process_id, need in sorted(needs.items())],
        "open_tasks": open_tasks,
        "unheld": bool(needs) and not able,
    }


def _departments(people: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Group users by department, named departments by name first, then users without a department."""
    groups: dict[str | None, list[dict[str, Any]]] = {}
    for person in people:
        groups.setdefault(person["department"], []).append(person)
    names = sorted(name for name in groups if name is not None)
    ordered: list[str | None] = [*names, None] if None in groups else list(names)
    return [{"name": name, "users": groups[name]} for name in ordered]
