"""Publishing is an explicit, traced act, and the public pages show only published external flowcharts."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from api.app import create_app
from engine import publication
from engine.errors import Conflict, Forbidden
from engine.service import Liuhen
from tests.conftest import ADMIN, DESIGNER, PROCESSES, LiveServer, add_user

SCHOOL = PROCESSES / "private_school_establishment.bpmn"
REIMBURSEMENT = PROCESSES / "reimbursement.bpmn"
TEACHER = PROCESSES / "teacher_qualification.bpmn"


def changed_copy(path: Path) -> bytes:
    """The same flowchart with one more comment, which deploys as a new version."""
    return path.read_bytes() + b"\n<!-- revised -->\n"


@pytest.fixture
def deployed(service: Liuhen) -> Liuhen:
    for path in (SCHOOL, REIMBURSEMENT, TEACHER):
        service.deploy(path.read_bytes(), path.name, DESIGNER)
    return service


def test_publish_is_traced_and_replaces_version(deployed) -> None:
    publication.publish(deployed, "private_school_establishment", 1, ADMIN)
    deployed.deploy(changed_copy(SCHOOL), SCHOOL.name, DESIGNER)
    assert publication.published_item(deployed, "private_school_establishment").version == 1

    publication.publish(deployed, "private_school_establishment", 2, ADMIN)

    assert publication.published_item(deployed, "private_school_establishment").version == 2
    events = [e for e in deployed.system_trace() if e["kind"] == "definition_published"]
    assert [e["payload"]["version"] for e in events] == [1, 2]
    assert events[1]["payload"]["replaced_version"] == 1
    assert events[1]["actor"] == "admin"


def test_only_admins_publish(deployed) -> None:
    with pytest.raises(Forbidden):
        publication.publish(deployed, "private_school_establishment", 1, DESIGNER)
    publication.publish(deployed, "private_school_establishment", 1, ADMIN)
    with pytest.raises(Conflict):
        publication.publish(deployed, "private_school_establishment", 1, ADMIN)


def test_catalogue_lists_published_external_items(deployed) -> None:
    publication.publish(deployed, "private_school_establishment", 1, ADMIN)
    publication.publish(deployed, "reimbursement", 1, ADMIN)

    external = publication.published_items(deployed, kind="external")
    internal = publication.published_items(deployed, kind="internal")

    assert [item.process_id for item in external] == ["private_school_establishment"]
    assert [item.process_id for item in internal] == ["reimbursement"]
    publication.withdraw(deployed, "private_school_establishment", ADMIN)
    assert publication.published_items(deployed, kind="external") == []
    assert "definition_withdrawn" in [e["kind"] for e in deployed.system_trace()]


@pytest.fixture
def site(deployed) -> Iterator[httpx.Client]:
    add_user(deployed, "clerk", ["staff"], ["经办人"])
    publication.publish(deployed, "private_school_establishment", 1, ADMIN)
    publication.publish(deployed, "reimbursement", 1, ADMIN)
    with LiveServer(create_app(deployed.settings, deployed)) as server, \
            httpx.Client(base_url=server.url, timeout=60) as client:
        yield client


def test_public_pages_need_no_login(site) -> None:
    catalogue = site.get("/")
    assert catalogue.status_code == 200
    assert "民办学校设立" in catalogue.text
    assert "财务报销" not in catalogue.text
    assert "教师资格" not in catalogue.text

    item = site.get("/public/items/private_school_establishment")
    assert item.status_code == 200
    assert "法定期限" in item.text
    assert "3 个月" in item.text
    assert "30 个工作日" in item.text

    english = site.get("/public/items/private_school_establishment?lang=en")
    assert "Statutory time limit" in english.text


def test_unpublished_and_internal_items_are_hidden(site) -> None:
    assert site.get("/public/items/teacher_qualification", headers={"Accept": "text/html"}).status_code == 404
    assert site.get("/public/items/reimbursement").status_code == 404
    staff_page = site.get("/staff/flowcharts", follow_redirects=False)
    assert staff_page.status_code == 303
    assert staff_page.headers["location"].startswith("/login")


def test_staff_sign_in_shows_internal_flowcharts(site) -> None:
    signed_in = site.post("/login", data={"username": "clerk", "password": "pw-clerk-secret",
                                          "next": "/staff/flowcharts"}, follow_redirects=True)
    assert signed_in.status_code == 200
    assert "reimbursement" in signed_in.text
    wrong = site.post("/login", data={"username": "clerk", "password": "wrong-password"})
    assert wrong.status_code == 401


def test_catalogue_api_is_public(site) -> None:
    items = site.get("/api/catalogue").json()
    assert [item["process_id"] for item in items] == ["private_school_establishment"]
    assert items[0]["power_item"]["kind"] == "external"


def test_static_site_has_pages_and_diagrams(deployed, tmp_path) -> None:
    from api.static_site import write_site

    if shutil.which("dot") is None:
        pytest.skip("graphviz is not installed; `make test` installs it")
    publication.publish(deployed, "private_school_establishment", 1, ADMIN)
    written = write_site(deployed, tmp_path / "site", "zh_CN")

    index = (tmp_path / "site" / "index.html").read_text(encoding="utf-8")
    assert 'href="items/private_school_establishment.html"' in index
    page = (tmp_path / "site" / "items" / "private_school_establishment.html").read_text(encoding="utf-8")
    assert "../static/site.css" in page
    assert (tmp_path / "site" / "items" / "private_school_establishment.svg").read_bytes().lstrip().startswith(b"<")
    assert (tmp_path / "site" / "items" / "private_school_establishment.pdf").read_bytes().startswith(b"%PDF")
    assert len(written) == 5
