"""Bad BPMN input: every rejection names the file, element and line, and deploys nothing.

Each rejected upload goes through ``Liuhen.deploy``, and the test then checks that the database contains
no new definition, no stored file and no new system trace event.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

import engine.definitions
from engine.clock import ManualClock
from engine.db import definition_files
from engine.errors import CaseError, DefinitionError
from engine.service import Liuhen
from engine.users import Actor
from tests.conftest import DESIGNER, add_user

HEADER = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"\n'
    '    xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"\n'
    '    xmlns:liuhen="urn:liuhen:bpmn:1.0" xmlns:x="urn:example:vendor"\n'
    '    id="Definitions_1" targetNamespace="urn:liuhen:tests">\n'
)
FOOTER = "</bpmn:definitions>\n"


def bpmn(*lines: str, process_id: str = "Process_1", header: str = HEADER) -> bytes:
    """Return a BPMN file with one executable process whose children are ``lines``, one per line."""
    body = "".join(f"    {line}\n" for line in lines)
    return (f'{header}  <bpmn:process id="{process_id}" isExecutable="true">\n{body}  </bpmn:process>\n'
            f"{FOOTER}").encode()


def condition(flow_id: str, source: str, target: str, expression: str) -> str:
    return (f'<bpmn:sequenceFlow id="{flow_id}" sourceRef="{source}" targetRef="{target}">'
            f'<bpmn:conditionExpression xsi:type="bpmn:tFormalExpression">{expression}'
            f"</bpmn:conditionExpression></bpmn:sequenceFlow>")


def line_of(content: bytes, needle: str) -> int:
    return content[:content.index(needle.encode())].count(b"\n") + 1


def one_task(extensions: str = "", task_id: str = "Task_review") -> bytes:
    """Return a process of a start event, the user task ``task_id`` with ``extensions``, and an end event."""
    task = (f'<bpmn:userTask id="{task_id}" name="审核"><bpmn:extensionElements>{extensions}'
            f"</bpmn:extensionElements></bpmn:userTask>" if extensions else
            f'<bpmn:userTask id="{task_id}" name="审核"/>')
    return bpmn(
        '<bpmn:startEvent id="Start_1"/>',
        f'<bpmn:sequenceFlow id="Flow_1" sourceRef="Start_1" targetRef="{task_id}"/>',
        task,
        f'<bpmn:sequenceFlow id="Flow_2" sourceRef="{task_id}" targetRef="End_1"/>',
        '<bpmn:endEvent id="End_1"/>',
    )


VALID = one_task()


MEASURE = "<liuhen:controlMeasure>两人复核</liuhen:controlMeasure>"


def risk_checkpoint(level: str = "high", measures: str = MEASURE) -> str:
    return (f'<liuhen:riskCheckpoint id="RC-01" level="{level}" category="power_operation">'
            f"<liuhen:description>受理把关不严</liuhen:description>{measures}</liuhen:riskCheckpoint>")


def stored_files(service: Liuhen) -> int:
    with service.db.read() as conn:
        return conn.execute(select(func.count()).select_from(definition_files)).scalar_one()


def reject(service: Liuhen, content: bytes, filename: str) -> DefinitionError:
    """Deploy ``content``, expect a DefinitionError, and check that the database did not change."""
    definitions = service.list_definitions()
    system_trace = service.system_trace()
    files = stored_files(service)

    with pytest.raises(DefinitionError) as caught:
        service.deploy(content, filename, DESIGNER)

    assert service.list_definitions() == definitions
    assert service.system_trace() == system_trace
    assert stored_files(service) == files
    return caught.value


def assert_located(error: DefinitionError, filename: str, element_id: str | None = None,
                   line: int | None = None) -> None:
    text = error.render("en")
    assert error.filename == filename
    assert filename in text
    if element_id is not None:
        assert error.element_id == element_id
        assert element_id in text
    if line is not None:
        assert error.line == line
        assert f"line {line}" in text


@pytest.fixture
def staff(service: Liuhen) -> Actor:
    return add_user(service, "clerk", ["staff"])


# Files that are not BPMN ---------------------------------------------------------------------------


def test_truncated_xml_names_line(service: Liuhen) -> None:
    content = VALID[:VALID.index(b'<bpmn:endEvent id="End_1"/>')]

    error = reject(service, content, "truncated.bpmn")

    assert error.code == "definition_malformed_xml"
    assert_located(error, "truncated.bpmn", line=content.count(b"\n") + 1)
    assert "not well-formed XML" in error.render("en")


@pytest.mark.parametrize(("filename", "content", "root"), [
    ("page.xhtml", b'<?xml version="1.0" encoding="UTF-8"?>\n<html xmlns="http://www.w3.org/1999/xhtml">\n'
                   b"<head><title>t</title></head><body><p>BPMN</p></body></html>\n", "html"),
    ("diagram.svg", b'<?xml version="1.0" encoding="UTF-8"?>\n<svg xmlns="http://www.w3.org/2000/svg" '
                    b'width="10" height="10"><rect width="10" height="10"/></svg>\n', "svg"),
], ids=["xhtml", "svg"])
def test_xml_that_is_not_bpmn(service: Liuhen, filename: str, content: bytes, root: str) -> None:
    error = reject(service, content, filename)

    assert error.code == "definition_not_bpmn"
    assert_located(error, filename)
    assert error.line == 2
    assert f"its root element is {root}" in error.render("en")


@pytest.mark.parametrize("content", [b"", b"  \n\t\n"], ids=["zero-bytes", "whitespace"])
def test_empty_file(service: Liuhen, content: bytes) -> None:
    error = reject(service, content, "empty.bpmn")

    assert error.code == "definition_empty"
    assert_located(error, "empty.bpmn")


def test_file_over_size_limit(service: Liuhen, clock: ManualClock) -> None:
    settings = service.settings.model_copy(update={"max_upload_bytes": 1024})
    small = Liuhen(settings, clock=clock, database=service.db)
    content = VALID.replace(b"</bpmn:definitions>", b"<!-- " + b"x" * 2000 + b" -->\n</bpmn:definitions>")

    error = reject(small, content, "large.bpmn")

    assert error.code == "definition_too_large"
    assert_located(error, "large.bpmn")
    assert f"is {len(content)} bytes, over the limit of 1024 bytes" in error.render("en")
    assert service.deploy(content, "large.bpmn", DESIGNER)[0].created


# Encodings -----------------------------------------------------------------------------------------


def test_gbk_declared_encoding(service: Liuhen) -> None:
    content = VALID.decode().replace('encoding="UTF-8"', 'encoding="GBK"').encode("gbk")
    assert "审核".encode("gbk") in content

    error = reject(service, content, "gbk.bpmn")

    assert error.code == "definition_encoding"
    assert_located(error, "gbk.bpmn")
    assert error.line == 1
    assert "declares the encoding GBK" in error.render("en")


@pytest.mark.parametrize("codec", ["utf-16", "utf-16-le", "utf-16-be"], ids=["bom", "le-no-bom", "be-no-bom"])
def test_utf16_file(service: Liuhen, codec: str) -> None:
    content = VALID.decode().replace('encoding="UTF-8"', 'encoding="UTF-16"').encode(codec)

    error = reject(service, content, "utf16.bpmn")

    assert error.code == "definition_encoding"
    assert_located(error, "utf16.bpmn")
    assert "UTF-16" in error.render("en")


def test_ascii_declaration_accepted(service: Liuhen) -> None:
    content = bpmn('<bpmn:startEvent id="Start_1"/>',
                   '<bpmn:sequenceFlow id="Flow_1" sourceRef="Start_1" targetRef="End_1"/>',
                   '<bpmn:endEvent id="End_1"/>',
                   header=HEADER.replace('encoding="UTF-8"', 'encoding="US-ASCII"'))

    assert service.deploy(content, "ascii.bpmn", DESIGNER)[0].created


# Entities ------------------------------------------------------------------------------------------


@pytest.fixture
def parser_never_called(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Fail the test if lxml is asked to parse, which is where entities would be expanded or read."""
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the XML parser ran on a file with entity declarations")

    monkeypatch.setattr(engine.definitions.etree, "fromstring", refuse)
    yield


def with_doctype(doctype: str, entity: str) -> bytes:
    """Return VALID behind ``doctype``, with the task name replaced by a reference to ``entity``."""
    declaration, rest = VALID.split(b"\n", 1)
    return (declaration + b"\n" + doctype.encode() + b"\n"
            + rest.replace('name="审核"'.encode(), f'name="&{entity};"'.encode()))


def test_entity_expansion_rejected(service: Liuhen, parser_never_called: None) -> None:
    entities = ['<!ENTITY lol0 "lol">']
    for level in range(1, 10):
        entities.append(f'<!ENTITY lol{level} "{f"&lol{level - 1};" * 10}">')
    content = with_doctype("<!DOCTYPE bpmn:definitions [\n" + "\n".join(entities) + "\n]>", "lol9")

    error = reject(service, content, "laughs.bpmn")

    assert error.code == "definition_doctype"
    assert_located(error, "laughs.bpmn")


def test_external_entity_not_read(service: Liuhen, tmp_path: Path, parser_never_called: None) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("secret-marker-4711", encoding="utf-8")
    content = with_doctype(f'<!DOCTYPE bpmn:definitions [<!ENTITY x SYSTEM "file://{secret}">]>', "x")

    error = reject(service, content, "xxe.bpmn")

    assert error.code == "definition_doctype"
    assert_located(error, "xxe.bpmn")
    assert "secret-marker-4711" not in error.render("en")


def test_passwd_entity_rejected(service: Liuhen, parser_never_called: None) -> None:
    content = with_doctype('<!DOCTYPE bpmn:definitions [<!ENTITY x SYSTEM "file:///etc/passwd">]>', "x")

    error = reject(service, content, "passwd.bpmn")

    assert error.code == "definition_doctype"
    assert "root:" not in error.render("en")


# Nesting and size of the flow ----------------------------------------------------------------------


def test_xml_nesting_over_parser_limit(service: Liuhen) -> None:
    nested = "<x:level>" * 300 + "</x:level>" * 300
    content = bpmn('<bpmn:extensionElements>', nested, '</bpmn:extensionElements>',
                   '<bpmn:startEvent id="Start_1"/>',
                   '<bpmn:sequenceFlow id="Flow_1" sourceRef="Start_1" targetRef="End_1"/>',
                   '<bpmn:endEvent id="End_1"/>')

    error = reject(service, content, "deep.bpmn")

    assert error.code == "definition_too_deep"
    assert_located(error, "deep.bpmn", line=line_of(content, "<x:level>"))
    assert "more than 256 levels deep" in error.render("en")


def test_xml_nesting_over_configured_limit(service: Liuhen, clock: ManualClock) -> None:
    settings = service.settings.model_copy(update={"max_xml_depth": 20})
    strict = Liuhen(settings, clock=clock, database=service.db)
    nested = "<x:level>" * 30 + "</x:level>" * 30
    content = bpmn('<bpmn:extensionElements>', nested, '</bpmn:extensionElements>',
                   '<bpmn:startEvent id="Start_1"/>',
                   '<bpmn:sequenceFlow id="Flow_1" sourceRef="Start_1" targetRef="End_1"/>',
                   '<bpmn:endEvent id="End_1"/>')

    error = reject(strict, content, "deep.bpmn")

    assert error.code == "definition_too_deep"
    assert_located(error, "deep.bpmn")
    assert "over the limit of 20" in error.render("en")


def test_long_sequential_chain_deploys(service: Liuhen, staff: Actor) -> None:
    # SpiffWorkflow parses sequence flows recursively, a few stack frames per node.
    count = 1000
    lines = ['<bpmn:startEvent id="Start_1"/>', '<bpmn:sequenceFlow id="Flow_0" sourceRef="Start_1" '
             'targetRef="Task_1"/>']
    for number in range(1, count + 1):
        target = f"Task_{number + 1}" if number < count else "End_1"
        lines.append(f'<bpmn:task id="Task_{number}" name="步骤 {number}"/>')
        lines.append(f'<bpmn:sequenceFlow id="Flow_{number}" sourceRef="Task_{number}" targetRef="{target}"/>')
    lines.append('<bpmn:endEvent id="End_1"/>')
    content = bpmn(*lines, process_id="long_chain")

    deployed = service.deploy(content, "chain.bpmn", DESIGNER)

    assert [(d.process_id, d.version, d.created) for d in deployed] == [("long_chain", 1, True)]
    case = service.start_case("long_chain", staff)
    assert case["status"] == "running"
    assert [task["element_id"] for task in case["tasks"]] == ["Task_1"]


# BPMN content ---------------------------------------------------------------------------------------


def test_process_without_start_event(service: Liuhen) -> None:
    content = bpmn('<bpmn:userTask id="Task_review" name="审核"/>',
                   '<bpmn:sequenceFlow id="Flow_2" sourceRef="Task_review" targetRef="End_1"/>',
                   '<bpmn:endEvent id="End_1"/>')

    error = reject(service, content, "no-start.bpmn")

    assert error.code == "definition_no_start_event"
    assert_located(error, "no-start.bpmn", "Process_1", line_of(content, "<bpmn:process"))


def test_duplicate_element_ids(service: Liuhen) -> None:
    content = bpmn('<bpmn:startEvent id="Start_1"/>',
                   '<bpmn:sequenceFlow id="Flow_1" sourceRef="Start_1" targetRef="Task_review"/>',
                   '<bpmn:userTask id="Task_review" name="审核"/>',
                   '<bpmn:sequenceFlow id="Flow_2" sourceRef="Task_review" targetRef="End_1"/>',
                   '<bpmn:endEvent id="Task_review"/>')
    first = line_of(content, '<bpmn:userTask id="Task_review"')
    second = line_of(content, '<bpmn:endEvent id="Task_review"')

    error = reject(service, content, "duplicate.bpmn")

    assert error.code == "definition_duplicate_id"
    assert_located(error, "duplicate.bpmn", "Task_review")
    assert error.line == second
    assert f"lines {first} and {second}" in error.render("en")


def test_vendor_extension_may_repeat_id(service: Liuhen) -> None:
    # Some modelers point at a BPMN element from their own extension elements by repeating its id.
    content = one_task('<x:reference id="Task_review"/>')

    assert service.deploy(content, "vendor.bpmn", DESIGNER)[0].created


def test_unknown_risk_level(service: Liuhen) -> None:
    content = one_task(risk_checkpoint(level="critical"))

    error = reject(service, content, "risk.bpmn")

    assert error.code == "extension_invalid_value"
    assert_located(error, "risk.bpmn", "RC-01", line_of(content, "<liuhen:riskCheckpoint"))
    assert "'critical'" in error.render("en")
    assert "high, medium, low" in error.render("en")


def test_risk_checkpoint_without_measure(service: Liuhen) -> None:
    content = one_task(risk_checkpoint(measures=""))

    error = reject(service, content, "risk.bpmn")

    assert error.code == "extension_missing_value"
    assert_located(error, "risk.bpmn", "RC-01", line_of(content, "<liuhen:riskCheckpoint"))
    assert "liuhen:controlMeasure" in error.render("en")


def test_script_task_rejected(service: Liuhen) -> None:
    content = bpmn('<bpmn:startEvent id="Start_1"/>',
                   '<bpmn:sequenceFlow id="Flow_1" sourceRef="Start_1" targetRef="Script_1"/>',
                   '<bpmn:scriptTask id="Script_1" scriptFormat="python"><bpmn:script>x = 1</bpmn:script>'
                   '</bpmn:scriptTask>',
                   '<bpmn:sequenceFlow id="Flow_2" sourceRef="Script_1" targetRef="End_1"/>',
                   '<bpmn:endEvent id="End_1"/>')

    error = reject(service, content, "script.bpmn")

    assert error.code == "definition_unsupported_element"
    assert_located(error, "script.bpmn", "Script_1", line_of(content, "<bpmn:scriptTask"))
    assert "scriptTask" in error.render("en")


def test_call_activity_to_other_file(service: Liuhen) -> None:
    content = bpmn('<bpmn:startEvent id="Start_1"/>',
                   '<bpmn:sequenceFlow id="Flow_1" sourceRef="Start_1" targetRef="Call_1"/>',
                   '<bpmn:callActivity id="Call_1" calledElement="publication"/>',
                   '<bpmn:sequenceFlow id="Flow_2" sourceRef="Call_1" targetRef="End_1"/>',
                   '<bpmn:endEvent id="End_1"/>')

    error = reject(service, content, "caller.bpmn")

    assert error.code == "definition_missing_called_process"
    assert_located(error, "caller.bpmn", "Call_1", line_of(content, "<bpmn:callActivity"))
    assert "'publication'" in error.render("en")


def test_service_task_in_documentation_pool(service: Liuhen) -> None:
    # A participant modelled with isExecutable="false" is documentation, so its service task is not run.
    pool = (b'  <bpmn:process id="Applicant" isExecutable="false">\n'
            b'    <bpmn:serviceTask id="Send_form"/>\n  </bpmn:process>\n</bpmn:definitions>')
    content = VALID.replace(b"</bpmn:definitions>", pool)

    deployed = service.deploy(content, "pools.bpmn", DESIGNER)

    assert [(d.process_id, d.created) for d in deployed] == [("Process_1", True)]


# Expressions ---------------------------------------------------------------------------------------


def gateway_file(expression: str, fields: str = "") -> bytes:
    """Start, a user task with optional form fields, and an exclusive gateway guarded by ``expression``."""
    task = (f'<bpmn:userTask id="Task_review" name="审核"><bpmn:extensionElements>{fields}'
            f"</bpmn:extensionElements></bpmn:userTask>" if fields else '<bpmn:userTask id="Task_review"/>')
    return bpmn(
        '<bpmn:startEvent id="Start_1"/>',
        '<bpmn:sequenceFlow id="Flow_1" sourceRef="Start_1" targetRef="Task_review"/>',
        task,
        '<bpmn:sequenceFlow id="Flow_2" sourceRef="Task_review" targetRef="Gateway_1"/>',
        '<bpmn:exclusiveGateway id="Gateway_1" default="Flow_no"/>',
        condition("Flow_yes", "Gateway_1", "End_yes", expression),
        '<bpmn:sequenceFlow id="Flow_no" sourceRef="Gateway_1" targetRef="End_no"/>',
        '<bpmn:endEvent id="End_yes"/>',
        '<bpmn:endEvent id="End_no"/>',
    )


def test_undefined_variable_with_form_fields(service: Liuhen) -> None:
    content = gateway_file("budget &gt; 10", '<liuhen:formField name="amount" type="integer" label="金额"/>')

    error = reject(service, content, "undefined.bpmn")

    assert error.code == "definition_undefined_variable"
    assert_located(error, "undefined.bpmn", "Flow_yes", line_of(content, 'id="Flow_yes"'))
    assert "'budget'" in error.render("en")


def test_declared_variable_deploys(service: Liuhen) -> None:
    content = gateway_file("amount &gt; 10", '<liuhen:formField name="amount" type="integer" label="金额"/>')

    assert service.deploy(content, "declared.bpmn", DESIGNER)[0].created


def test_undefined_variable_at_start(service: Liuhen, staff: Actor) -> None:
    content = bpmn(
        '<bpmn:startEvent id="Start_1"/>',
        '<bpmn:sequenceFlow id="Flow_1" sourceRef="Start_1" targetRef="Gateway_1"/>',
        '<bpmn:exclusiveGateway id="Gateway_1"/>',
        condition("Flow_yes", "Gateway_1", "End_yes", "approved"),
        condition("Flow_no", "Gateway_1", "End_no", "not approved"),
        '<bpmn:endEvent id="End_yes"/>',
        '<bpmn:endEvent id="End_no"/>',
        process_id="gateway_first",
    )
    service.deploy(content, "gateway-first.bpmn", DESIGNER)
    system_trace = service.system_trace()

    with pytest.raises(CaseError) as caught:
        service.start_case("gateway_first", staff)

    assert "'approved'" in caught.value.render("en")
    assert service.list_cases() == []
    assert service.system_trace() == system_trace


def test_undefined_variable_on_complete(service: Liuhen, staff: Actor) -> None:
    service.deploy(gateway_file("approved == True"), "gateway.bpmn", DESIGNER)
    case = service.start_case("Process_1", staff)
    task_id = case["tasks"][0]["id"]
    trace_before = service.case_trace(case["id"])

    with pytest.raises(CaseError) as caught:
        service.complete(task_id, staff, {})

    assert "'approved'" in caught.value.render("en")
    assert service.get_case(case["id"]) == case
    assert service.case_trace(case["id"]) == trace_before
    # A second attempt fails the same way, so the first one left the task ready, not half completed.
    with pytest.raises(CaseError):
        service.complete(task_id, staff, {})
    assert service.get_case(case["id"]) == case


def test_import_in_condition_rejected(service: Liuhen) -> None:
    content = gateway_file("__import__('os').system('true')")

    error = reject(service, content, "import.bpmn")

    assert error.code == "definition_unsafe_expression"
    assert_located(error, "import.bpmn", "Flow_yes", line_of(content, 'id="Flow_yes"'))
    assert "__import__" in error.render("en")


def test_class_access_in_timer_rejected(service: Liuhen) -> None:
    content = bpmn(
        '<bpmn:startEvent id="Start_1"/>',
        '<bpmn:sequenceFlow id="Flow_1" sourceRef="Start_1" targetRef="Timer_1"/>',
        '<bpmn:intermediateCatchEvent id="Timer_1"><bpmn:timerEventDefinition>'
        '<bpmn:timeDuration xsi:type="bpmn:tFormalExpression">().__class__</bpmn:timeDuration>'
        "</bpmn:timerEventDefinition></bpmn:intermediateCatchEvent>",
        '<bpmn:sequenceFlow id="Flow_2" sourceRef="Timer_1" targetRef="End_1"/>',
        '<bpmn:endEvent id="End_1"/>',
    )

    error = reject(service, content, "timer.bpmn")

    assert error.code == "definition_unsafe_expression"
    assert_located(error, "timer.bpmn", "Timer_1", line_of(content, 'id="Timer_1"'))
    assert "__class__" in error.render("en")


def test_juel_condition_rejected(service: Liuhen) -> None:
    content = gateway_file("${amount &gt; 10}")

    error = reject(service, content, "juel.bpmn")

    assert error.code == "definition_unsafe_expression"
    assert_located(error, "juel.bpmn", "Flow_yes", line_of(content, 'id="Flow_yes"'))
    assert "JUEL" in error.render("en")


# Versions ------------------------------------------------------------------------------------------


def review_file(*extra_tasks: str) -> bytes:
    """A process ``leave`` of the user task Task_review followed by ``extra_tasks``."""
    tasks = ["Task_review", *extra_tasks]
    lines = ['<bpmn:startEvent id="Start_1"/>',
             f'<bpmn:sequenceFlow id="Flow_0" sourceRef="Start_1" targetRef="{tasks[0]}"/>']
    for index, task in enumerate(tasks):
        target = tasks[index + 1] if index + 1 < len(tasks) else "End_1"
        lines.append(f'<bpmn:userTask id="{task}"/>')
        lines.append(f'<bpmn:sequenceFlow id="Flow_{index + 1}" sourceRef="{task}" targetRef="{target}"/>')
    lines.append('<bpmn:endEvent id="End_1"/>')
    return bpmn(*lines, process_id="leave")


def test_identical_file_deployed_once(service: Liuhen) -> None:
    first = service.deploy(review_file(), "leave.bpmn", DESIGNER)
    definitions = service.list_definitions()
    system_trace = service.system_trace()

    second = service.deploy(review_file(), "leave-copy.bpmn", DESIGNER)

    assert [(d.version, d.created) for d in first] == [(1, True)]
    assert [(d.version, d.created) for d in second] == [(1, False)]
    assert second[0].definition_id == first[0].definition_id
    assert service.list_definitions() == definitions
    assert service.system_trace() == system_trace
    assert stored_files(service) == 1


def test_changed_file_becomes_version_2(service: Liuhen, staff: Actor) -> None:
    service.deploy(review_file(), "leave.bpmn", DESIGNER)
    old_case = service.start_case("leave", staff)
    events = len(service.system_trace())

    deployed = service.deploy(review_file("Task_sign"), "leave.bpmn", DESIGNER)

    assert [(d.process_id, d.version, d.created) for d in deployed] == [("leave", 2, True)]
    assert [d["version"] for d in service.list_definitions("leave")] == [1, 2]
    new_events = service.system_trace()[events:]
    assert [(e["kind"], e["payload"]["version"]) for e in new_events] == [("definition_deployed", 2)]

    new_case = service.start_case("leave", staff)
    pinned_case = service.start_case("leave", staff, version=1)
    assert new_case["version"] == 2
    assert pinned_case["version"] == 1
    assert service.get_case(old_case["id"])["version"] == 1

    # The old case follows version 1 to its end; the new one goes on to version 2's extra task.
    finished = service.complete(old_case["tasks"][0]["id"], staff, {})
    assert finished["status"] == "completed"
    assert finished["version"] == 1
    moved = service.complete(new_case["tasks"][0]["id"], staff, {})
    assert moved["status"] == "running"
    assert [t["element_id"] for t in moved["tasks"] if t["status"] == "ready"] == ["Task_sign"]

    # Uploading the first file again changes nothing: it is still version 1.
    again = service.deploy(review_file(), "leave.bpmn", DESIGNER)
    assert [(d.version, d.created) for d in again] == [(1, False)]


def test_flow_to_missing_element_rejected(service) -> None:
    content = VALID.replace(b'targetRef="End_1"', b'targetRef="End_missing"')
    assert content != VALID

    error = reject(service, content, "dangling.bpmn")

    assert error.code == "definition_dangling_flow"
    assert "End_missing" in error.render("en")
    assert error.element_id is not None


@pytest.mark.parametrize(("attributes", "expected"), [
    ('type="string" min="1"', "Form field amount is of type string, which takes no min"),
    ('type="decimal" min="5" max="1"', "Form field amount has min 5 above max 1"),
])
def test_form_field_bounds_rejected(service: Liuhen, attributes: str, expected: str) -> None:
    content = one_task(f'<liuhen:formField name="amount" {attributes} label="金额"/>')

    error = reject(service, content, "bounds.bpmn")

    assert expected in error.render("en")
