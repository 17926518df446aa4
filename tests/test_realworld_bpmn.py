"""BPMN files written by other tools and projects: each one deploys and starts, or is rejected clearly.

The files are not part of the repository; they are read from ``shared/realworld-bpmn`` next to the
checkout. The expected outcome of every file is pinned in ``EXPECTED``, so a change in what liuhen
accepts or how it rejects a file fails here. docs/compatibility.md explains each outcome.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest

from engine.clock import ManualClock
from engine.errors import CaseError, DefinitionError
from engine.service import Liuhen
from engine.users import Actor
from tests.conftest import DESIGNER, START, add_user

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "realworld-bpmn"
if not CORPUS.is_dir():
    pytest.skip(f"the real-world BPMN corpus is not at {CORPUS}", allow_module_level=True)


@dataclass(frozen=True)
class Deployed:
    """The file deploys these processes, and a case of each starts."""

    process_ids: tuple[str, ...]


@dataclass(frozen=True)
class Rejected:
    """Deploying the file raises DefinitionError with this code, element id and line."""

    code: str
    element_id: str | None = None
    line: int | None = None


EXPECTED: dict[str, Deployed | Rejected] = {
    "activiti/ProcessDiagramGeneratorTest.testTransactionElements.bpmn20.xml":
        Rejected("definition_unsupported_element", "sid-CF319F6A-39C7-4E36-A5BF-4AA0F75F0BE4", 9),
    "activiti/chinese.bpmn": Deployed(("process",)),
    "bpmn-js/complex.bpmn": Rejected("definition_no_process"),
    "bpmn-js/kitchen-sink.bpmn": Rejected("definition_unsupported_element", "Activity_011s9cd", 325),
    "bpmn-js/process-missing-bpmndiagram.bpmn": Rejected("definition_no_start_event", "PROCESS", 3),
    "camunda-examples/camunda-testing-job-announcement-publication.bpmn":
        Rejected("definition_unsupported_element", "publish_announcement_website", 9),
    "camunda-examples/camunda-testing-job-announcement.bpmn":
        Rejected("definition_unsupported_element", "mail", 24),
    "camunda-examples/invoicePayment.bpmn": Deployed(("embeddedFormsBpmnEvents",)),
    "camunda-examples/loan-granting.bpmn": Rejected("definition_unsupported_element", "Task_1lvjtd4", 5),
    "camunda-examples/message_start_process.bpmn": Deployed(("Message_Start_Process",)),
    "flowable/multiinstancemodel.bpmn": Rejected("definition_unsafe_expression", "subUserTask1", 15),
    "flowable/subprocessmultidiagrammodel-noDI.bpmn": Deployed(("process",)),
    "miwg/reference/A.1.0.bpmn": Rejected("definition_encoding", line=1),
    "miwg/reference/A.3.0.bpmn": Rejected("definition_encoding", line=1),
    "miwg/reference/A.4.0.bpmn": Rejected("definition_encoding", line=1),
    "miwg/reference/B.1.0.bpmn": Rejected("definition_encoding", line=1),
    "miwg/reference/B.2.0.bpmn": Rejected("definition_encoding", line=1),
    "miwg/reference/C.1.0.bpmn": Rejected("definition_unsupported_element", "archiveInvoice", 570),
    "miwg/reference/C.2.0.bpmn": Rejected("definition_no_process"),
    "miwg/reference/C.4.0.bpmn":
        Rejected("definition_unsupported_element", "_9db2d136-aa33-4de2-be76-554e7843363d", 252),
    "miwg/reference/C.5.0.bpmn":
        Rejected("definition_unsupported_element", "_776bd6ca-5f18-432f-a748-f1930bfdf16e", 5),
    "miwg/reference/C.8.0.bpmn": Rejected("definition_no_process"),
    "miwg/reference/C.9.1.bpmn": Deployed(("requestDocument_en",)),
    "miwg/tool-exports/adonis-17.0/B.2.0-export.bpmn":
        Rejected("definition_unsupported_element", "_a5640b16-b24f-4e65-861c-adf30262d73d", 15846),
    "miwg/tool-exports/bizagi-modeler-2.8.0.8/A.4.0-roundtrip.bpmn":
        Rejected("definition_no_start_event", "Id_1ab6d982-9e61-403f-bd4a-d280019aa78d", 348),
    "miwg/tool-exports/enterprise-architect-12.0.1207/A.3.0-roundtrip.bpmn": Rejected("definition_encoding", line=1),
    "miwg/tool-exports/ibm-blueworks-live-2014-04/A.2.0-export.bpmn": Rejected("definition_no_process"),
    "miwg/tool-exports/itp-commerce-visio-6/B.1.0-export.bpmn":
        Rejected("definition_unsupported_element", "_e2812656-51da-403b-af44-17923e229677", 33),
    "ruoyi-vue-pro/leave-formkey.bpmn": Rejected("definition_unsafe_expression", "flow3", 17),
    "ruoyi-vue-pro/oa-leave.bpmn":
        Rejected("definition_unsafe_expression", "sid-DE7C5477-8C20-42C5-ADE5-AB4A9A13D58D", 9),
    "spiffworkflow/Approvals.bpmn": Deployed(("Approvals",)),
    "spiffworkflow/Invalid-Workflows/No-Start-Event.bpmn20.xml":
        Rejected("definition_no_start_event", "sid-669ddebf-4196-41ee-8b04-bcc90bc5f983", 10),
    "spiffworkflow/Test-Workflows/CallActivity-Escalation-Test-Sub.bpmn20.xml":
        Rejected("definition_unsafe_expression", "SequenceFlow_0expyhf", 29),
    "spiffworkflow/Test-Workflows/CallActivity-Escalation-Test.bpmn20.xml":
        Rejected("definition_unsupported_element", "Task_0ujttus", 136),
    "spiffworkflow/Test-Workflows/Parallel-Join-Long-Inclusive.bpmn20.xml":
        Deployed(("sid-bae04828-c969-4480-8cfe-09ad1f97d81c",)),
    "spiffworkflow/Test-Workflows/Parallel-Looping-After-Join.bpmn20.xml":
        Rejected("definition_invalid", "sid-41205B5D-4DBA-4155-A0EE-7D71CE9AA459", 156),
    "spiffworkflow/correlation_two_conversations.bpmn": Deployed(("proc_1", "proc_2", "proc_3")),
    "spiffworkflow/diff/v2.bpmn": Rejected("definition_unsupported_element", "Activity_0b53566", 29),
    "spiffworkflow/diff/v3.bpmn": Rejected("definition_unsupported_element", "Activity_0b53566", 22),
    "spiffworkflow/inclusive_gateway.bpmn": Rejected("definition_unsupported_element", "increment_v", 41),
    "spiffworkflow/parallel_multiinstance_loop_input.bpmn": Deployed(("main",)),
    "spiffworkflow/timer-cycle-start.bpmn": Rejected("definition_unsupported_element", "Refill_Coffee", 21),
    "spiffworkflow/timer-non-interrupt-boundary.bpmn": Deployed(("NonInterruptTimer",)),
    "spiffworkflow/transaction.bpmn": Rejected("definition_unsupported_element", "Activity_Print_Data", 78),
}

# Start data a process needs: this multi-instance task reads its input collection from the case data.
START_DATA = {"spiffworkflow/parallel_multiinstance_loop_input.bpmn": {"input_data": [1, 2, 3]}}


def corpus_files() -> list[str]:
    return sorted(str(path.relative_to(CORPUS)) for path in CORPUS.rglob("*")
                  if path.is_file() and path.name.endswith((".bpmn", ".bpmn20.xml")))


@pytest.fixture
def staff(service: Liuhen) -> Actor:
    # Business staff with no posts: they may start any case but act only on tasks outside lanes.
    return add_user(service, "clerk", ["staff"])


def test_table_lists_every_file() -> None:
    assert sorted(EXPECTED) == corpus_files()


@pytest.mark.parametrize("relative", [pytest.param(name, id=name) for name in corpus_files()])
def test_corpus_file(service: Liuhen, staff: Actor, relative: str) -> None:
    path = CORPUS / relative
    expected = EXPECTED[relative]

    if isinstance(expected, Rejected):
        with pytest.raises(DefinitionError) as caught:
            service.deploy(path.read_bytes(), path.name, DESIGNER)
        error = caught.value
        text = error.render("en")
        assert error.code == expected.code
        assert error.filename == path.name
        assert path.name in text
        assert error.element_id == expected.element_id
        assert error.line == expected.line
        if expected.element_id is not None:
            assert expected.element_id in text
            assert f"line {expected.line}" in text
        assert service.list_definitions() == []
        return

    deployed = service.deploy(path.read_bytes(), path.name, DESIGNER)
    assert [d.process_id for d in deployed] == list(expected.process_ids)
    assert all(d.created and d.version == 1 for d in deployed)
    for process_id in expected.process_ids:
        try:
            case = service.start_case(process_id, staff, START_DATA.get(relative))
        except CaseError as exc:
            pytest.fail(f"{process_id} did not start: {exc.code}: {exc.render('en')}")
        assert case["status"] == "running"
        assert case["version"] == 1


def test_bare_iso_timers_fire(service: Liuhen, staff: Actor, clock: ManualClock) -> None:
    # C.9.1 writes its timers as bare ISO-8601: a daily reminder cycle R6/P1D and a one-week P7D.
    path = CORPUS / "miwg/reference/C.9.1.bpmn"
    service.deploy(path.read_bytes(), path.name, DESIGNER)
    case = service.start_case("requestDocument_en", staff)
    assert case["next_timer_at"] == START + timedelta(days=1)

    clock.advance(timedelta(days=7, seconds=1))
    service.fire_due_timers()

    case = service.get_case(case["id"])
    assert [t["element_id"] for t in case["tasks"] if t["status"] == "ready"] == ["UserTask_CallCustomer"]
    fired = [e["element_id"] for e in service.case_trace(case["id"]) if e["kind"] == "timer_fired"]
    assert "BoundaryEvent_2" in fired


def test_call_activity_in_same_file(service: Liuhen, staff: Actor) -> None:
    # Approvals calls two processes defined in the same file; only the caller is startable.
    path = CORPUS / "spiffworkflow/Approvals.bpmn"

    deployed = service.deploy(path.read_bytes(), path.name, DESIGNER)

    assert [d.process_id for d in deployed] == ["Approvals"]
    case = service.start_case("Approvals", staff)
    assert sorted(t["element_id"] for t in case["tasks"]) == [
        "First_Approval_Wins.Manager_Approval", "First_Approval_Wins.Supervisor_Approval"]


def test_missing_input_collection_is_case_error(service: Liuhen, staff: Actor) -> None:
    path = CORPUS / "spiffworkflow/parallel_multiinstance_loop_input.bpmn"
    service.deploy(path.read_bytes(), path.name, DESIGNER)

    with pytest.raises(CaseError) as caught:
        service.start_case("main", staff)

    assert "TypeError" in caught.value.render("en")
    assert service.list_cases() == []
