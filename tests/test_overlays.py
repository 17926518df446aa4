"""Case paths and version heat maps drawn on shipped flowcharts: SVG structure, HTTP endpoints and the CLI."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
from lxml import etree

from api.app import create_app
from api.demo import load_json
from api.overlay_rendering import case_diagram, version_heatmap
from diagrams.overlay import circled, parse_timezone
from engine import interventions
from engine.case_paths import ARRIVAL_KINDS, Edge, FlowGraph, trace_case_path
from engine.clock import ManualClock
from engine.errors import InvalidInput, NotFound
from engine.path_statistics import summarize_paths
from engine.service import Liuhen
from engine.users import Actor, get_actor
from tests.conftest import ADMIN, PROCESSES, LiveServer, add_user
from tests.test_diagrams import parse_svg, texts
from tests.test_replay import deploy_shipped, login, run_cli, run_demo

SHANGHAI = parse_timezone("Asia/Shanghai")
REWORK = "large_tender_retender_and_rectification"


def by_id(svg: etree._Element) -> dict[str, etree._Element]:
    """Map the id of every SVG group, which Graphviz takes from the BPMN element id, to the group."""
    return {group.get("id"): group for group in svg.iter("{http://www.w3.org/2000/svg}g") if group.get("id")}


def classes(group: etree._Element) -> set[str]:
    return set((group.get("class") or "").split())


def orders(group: etree._Element) -> list[int]:
    return sorted(int(name.removeprefix("order-")) for name in classes(group) if name.startswith("order-"))


def tooltip(group: etree._Element) -> str:
    return " ".join(anchor.get("{http://www.w3.org/1999/xlink}title") or "" for anchor in group.iter())


def case_svg(service: Liuhen, case_id: int, locale: str = "en") -> dict[str, etree._Element]:
    return by_id(parse_svg(case_diagram(service, case_id, "svg", locale, SHANGHAI)))


def expected_orders(service: Liuhen, case_id: int) -> dict[str, list[int]]:
    """Number the arrivals of the trace in order, with the start of the case as 1, per element."""
    arrivals = [event["element_id"] for event in service.case_trace(case_id) if event["kind"] in ARRIVAL_KINDS]
    numbered: dict[str, list[int]] = {}
    for order, element_id in enumerate(arrivals, start=2):
        numbered.setdefault(element_id, []).append(order)
    return numbered


def scenario_steps(name: str) -> tuple[str, dict[str, Any]]:
    for path in sorted((PROCESSES / "scenarios").glob("*.json")):
        document = load_json(path)
        for scenario in document["scenarios"]:
            if scenario["name"] == name:
                return document["process_id"], scenario
    raise KeyError(name)


def actor(service: Liuhen, username: str) -> Actor:
    with service.db.read() as conn:
        found = get_actor(conn, username)
    assert found is not None
    return found


def open_task(service: Liuhen, case_id: int, element_id: str) -> str:
    return next(t["id"] for t in service.get_case(case_id)["tasks"] if t["element_id"] == element_id)


def start_with_interventions(service: Liuhen, clock: ManualClock) -> int:
    """Start a procurement case, complete its request, then reassign and skip the leader's review.

    The case ends up waiting at Task_procurement_plan, with a data edit recorded for the whole case.
    """
    _process_id, scenario = scenario_steps("small_inquiry_completed")
    request, review = scenario["steps"][0], scenario["steps"][1]
    case = service.start_case("procurement", actor(service, request["user"]), title="干预测试")
    service.complete(open_task(service, case["id"], "Task_request"), actor(service, request["user"]),
                     request["data"])
    add_user(service, "deputy_leader", ["staff"], ["分管领导"])
    review_task = open_task(service, case["id"], "Task_leader_review")
    interventions.reassign_task(service, review_task, ADMIN, "deputy_leader", "分管领导出差")
    interventions.skip_step(service, review_task, ADMIN, "系统故障，线下已审批", review["data"])
    interventions.edit_case_data(service, case["id"], ADMIN, {"needed_by": "2025-06-30"}, "申请人更正日期")
    return case["id"]


def node_count(group: etree._Element, suffix: str = "×") -> int:
    """Return the count written as "N×" in a heat map node or flow label."""
    found = [text for text in texts(group) if re.fullmatch(rf"\d+{suffix}", text)]
    assert len(found) == 1, texts(group)
    return int(found[0].removesuffix(suffix))


# Case path

def test_case_path_numbers_steps_in_order(service, clock) -> None:
    deploy_shipped(service)
    case_id = run_demo(service, clock, "procurement", "small_inquiry_completed")["small_inquiry_completed"]

    svg = case_svg(service, case_id)

    start = svg["StartEvent_need"]
    assert {"visited", "order-1"} <= classes(start)
    assert circled(1) in texts(start)
    for element_id, numbers in expected_orders(service, case_id).items():
        assert "visited" in classes(svg[element_id]), element_id
        assert orders(svg[element_id]) == numbers, element_id
    request = svg["Task_request"]
    assert circled(2) in texts(request)
    assert any(text.startswith("徐涛 ") for text in texts(request)), texts(request)
    assert "Step 2: ready" in tooltip(request)


def test_case_path_marks_taken_flows_only(service, clock) -> None:
    deploy_shipped(service)
    case_id = run_demo(service, clock, "procurement", "small_inquiry_completed")["small_inquiry_completed"]

    svg = case_svg(service, case_id)

    for flow_id in ("Flow_need", "Flow_to_leader", "Flow_need_confirmed", "Flow_under_threshold", "Flow_paid"):
        assert "taken" in classes(svg[flow_id]), flow_id
    for flow_id in ("Flow_need_rejected", "Flow_over_threshold", "Flow_failed_tender", "Flow_not_accepted"):
        assert "untaken" in classes(svg[flow_id]), flow_id
        assert "taken" not in classes(svg[flow_id]), flow_id


def test_untaken_end_event_is_not_visited(service, clock) -> None:
    deploy_shipped(service)
    case_id = run_demo(service, clock, "procurement", "small_inquiry_completed")["small_inquiry_completed"]

    svg = case_svg(service, case_id)

    assert "visited" in classes(svg["EndEvent_completed"])
    for end in ("EndEvent_need_rejected", "EndEvent_collective_rejected"):
        assert "visited" not in classes(svg[end])
        assert "unreached" in classes(svg[end])
        assert orders(svg[end]) == []
    assert "unreached" in classes(svg["Task_collective_decision"])


def test_rework_loop_shows_repeated_step(service, clock) -> None:
    deploy_shipped(service)
    case_id = run_demo(service, clock, "procurement", REWORK)[REWORK]

    svg = case_svg(service, case_id)

    expected = expected_orders(service, case_id)
    for element_id in ("Task_procurement_plan", "Task_evaluation", "Task_acceptance_check"):
        group = svg[element_id]
        assert len(orders(group)) == 2, element_id
        assert orders(group) == expected[element_id]
        for number in orders(group):
            assert circled(number) in texts(group)
    assert "taken" in classes(svg["Flow_failed_tender"])
    assert "×2" in texts(svg["Flow_to_evaluation"])
    assert "×2" not in texts(svg["Flow_enough_bids"])


def test_parallel_join_is_inferred(service, clock) -> None:
    deploy_shipped(service)
    case_id = run_demo(service, clock, "reimbursement", "training_fee_mid")["training_fee_mid"]

    svg = case_svg(service, case_id)

    join = svg["Gateway_sign_join"]
    assert {"visited", "inferred"} <= classes(join)
    assert orders(join) == []
    for flow_id in ("Flow_director_signed", "Flow_leader_signed", "Flow_signed"):
        assert "taken" in classes(svg[flow_id]), flow_id


def test_timer_path_and_cancelled_task(service, clock) -> None:
    deploy_shipped(service)
    name = "withdrawn_no_resubmission"
    case_id = run_demo(service, clock, "private_school_establishment", name)[name]

    svg = case_svg(service, case_id)

    assert "cancelled" in classes(svg["Task_resubmit"])
    assert "visited" in classes(svg["Event_no_resubmission"])
    assert "taken" in classes(svg["Flow_resubmission_overdue"])
    assert "visited" in classes(svg["EndEvent_withdrawn"])


def test_open_step_and_interventions_marked(service, clock) -> None:
    deploy_shipped(service)
    case_id = start_with_interventions(service, clock)

    svg = case_svg(service, case_id)

    review = svg["Task_leader_review"]
    assert {"visited", "intervention"} <= classes(review)
    assert "open" not in classes(review)
    assert "[intervention]" in texts(review)
    # The overlay names people by their display names; the demo administrator "admin" is 系统管理员.
    assert "task reassigned by an administrator: 系统管理员" in tooltip(review)
    assert "reason: 分管领导出差" in tooltip(review)
    assert "step completed by an administrator without its checks" in tooltip(review)

    plan = svg["Task_procurement_plan"]
    assert {"visited", "open"} <= classes(plan)
    assert "intervention" not in classes(plan)
    assert any(text.startswith("open since") for text in texts(plan)), texts(plan)
    assert "unreached" in classes(svg["Task_payment"])

    heading = " ".join(texts(parse_svg(case_diagram(service, case_id, "svg", "en", SHANGHAI))))
    assert "case data edited by an administrator" in heading
    assert "申请人更正日期" in heading


def test_case_path_in_chinese(service, clock) -> None:
    deploy_shipped(service)
    case_id = run_demo(service, clock, "procurement", "small_inquiry_completed")["small_inquiry_completed"]

    svg = parse_svg(case_diagram(service, case_id, "svg", "zh_CN", SHANGHAI))

    words = texts(svg)
    assert "办件路径" in words
    assert "版本 1，已办结" in words


def test_case_times_follow_time_zone(service, clock) -> None:
    deploy_shipped(service)
    case_id = run_demo(service, clock, "procurement", "need_rejected")["need_rejected"]
    completed = next(e for e in service.case_trace(case_id) if e["kind"] == "task_completed")

    in_shanghai = case_svg(service, case_id)["Task_request"]
    in_utc = by_id(parse_svg(case_diagram(service, case_id, "svg", "en", parse_timezone("UTC"))))["Task_request"]

    stamp = completed["at"][5:16].replace("T", " ")
    assert any(text.endswith(stamp) for text in texts(in_utc)), (stamp, texts(in_utc))
    assert not any(text.endswith(stamp) for text in texts(in_shanghai))


def test_unknown_case_and_time_zone_rejected(service) -> None:
    with pytest.raises(NotFound):
        case_diagram(service, 999, "svg", "en", SHANGHAI)
    with pytest.raises(InvalidInput) as error:
        parse_timezone("Mars/Olympus")
    assert "Time zone 'Mars/Olympus' is unknown" in error.value.render("en")


# Heat map

def arrivals_per_element(service: Liuhen, process_id: str) -> tuple[Counter[str], int]:
    counts: Counter[str] = Counter()
    cases = service.list_cases(process_id=process_id)
    for case in cases:
        counts.update(e["element_id"] for e in service.case_trace(case["id"]) if e["kind"] in ARRIVAL_KINDS)
    return counts, len(cases)


def taken_per_flow(service: Liuhen, process_id: str) -> Counter[str]:
    """Count the flows gateways took, straight from the gateway_decision events of the traces."""
    counts: Counter[str] = Counter()
    for case in service.list_cases(process_id=process_id):
        for event in service.case_trace(case["id"]):
            if event["kind"] == "gateway_decision":
                counts.update(flow["flow_id"] for flow in event["payload"]["taken"])
    return counts


def test_heatmap_node_counts_match_traces(service, clock) -> None:
    deploy_shipped(service)
    run_demo(service, clock, "procurement")

    svg = by_id(parse_svg(version_heatmap(service, "procurement", 1, "svg", "en")))

    counts, cases = arrivals_per_element(service, "procurement")
    assert cases == 5
    for element_id, count in counts.items():
        assert node_count(svg[element_id]) == count, element_id
    assert node_count(svg["StartEvent_need"]) == cases
    assert counts["Task_procurement_plan"] == 4
    assert node_count(svg["EndEvent_collective_rejected"]) == 1
    assert {"visited", "heat-5"} <= classes(svg["Task_request"])


def test_heatmap_flow_counts_match_traces(service, clock) -> None:
    deploy_shipped(service)
    run_demo(service, clock, "procurement")

    svg = by_id(parse_svg(version_heatmap(service, "procurement", 1, "svg", "en")))

    for flow_id, count in taken_per_flow(service, "procurement").items():
        assert node_count(svg[flow_id]) == count, flow_id
        assert "taken" in classes(svg[flow_id])
    widths = {flow_id: float(next(svg[flow_id].iter("{http://www.w3.org/2000/svg}path")).get("stroke-width") or 1)
              for flow_id in ("Flow_need", "Flow_failed_tender")}
    assert widths["Flow_need"] > widths["Flow_failed_tender"]


def test_heatmap_shows_average_times(service, clock) -> None:
    deploy_shipped(service)
    run_demo(service, clock, "procurement")

    english = by_id(parse_svg(version_heatmap(service, "procurement", 1, "svg", "en")))
    chinese = by_id(parse_svg(version_heatmap(service, "procurement", 1, "svg", "zh_CN")))

    # The demo leaves 17 minutes between two steps, so every task waits 17 minutes on average.
    assert "avg 17 min" in texts(english["Task_request"])
    assert "平均 17 分钟" in texts(chinese["Task_request"])
    assert "5 次" in texts(chinese["Task_request"])
    assert not any(text.startswith("avg") for text in texts(english["Gateway_need"]))
    assert "median 17 min" in tooltip(english["Task_evaluation"])


def test_heatmap_counts_interventions_per_step(service, clock) -> None:
    deploy_shipped(service)
    run_demo(service, clock, "procurement", "need_rejected")
    case_id = start_with_interventions(service, clock)

    svg = parse_svg(version_heatmap(service, "procurement", 1, "svg", "en"))
    nodes = by_id(svg)

    review = nodes["Task_leader_review"]
    assert "risk-events" in classes(review)
    assert "risk events: 2" in texts(review)
    assert "task reassigned by an administrator: 1" in tooltip(review)
    assert "risk-events" not in classes(nodes["Task_request"])
    assert "Risk events on whole cases: case data edited by an administrator 1" in texts(svg)
    assert "running 1" in " ".join(texts(svg))
    assert service.get_case(case_id)["status"] == "running"

    by_risk = by_id(parse_svg(version_heatmap(service, "procurement", 1, "svg", "en", "risk")))
    assert "heat-5" in classes(by_risk["Task_leader_review"])
    assert "Fill: risk events per step" in texts(parse_svg(version_heatmap(service, "procurement", 1, "svg", "en",
                                                                            "risk")))


def test_heatmap_by_time_and_unknown_measure(service, clock) -> None:
    deploy_shipped(service)
    run_demo(service, clock, "reimbursement", "training_fee_mid")

    svg = by_id(parse_svg(version_heatmap(service, "reimbursement", 1, "svg", "en", "time")))

    # Both signatures become ready together and are completed one after the other, so the second waits twice as long.
    assert "heat-5" in classes(svg["Task_leader_sign"])
    assert "heat-3" in classes(svg["Task_director_sign"])
    with pytest.raises(InvalidInput):
        version_heatmap(service, "reimbursement", 1, "svg", "en", "colour")


def test_heatmap_of_version_without_cases(service) -> None:
    deploy_shipped(service)

    svg = by_id(parse_svg(version_heatmap(service, "teacher_qualification", 1, "svg", "en")))

    assert {"unreached", "heat-0"} <= classes(svg["Task_acceptance"])
    assert node_count(svg["Task_acceptance"]) == 0


# HTTP

@pytest.fixture
def server(service, clock) -> Any:
    deploy_shipped(service)
    run_demo(service, clock, "procurement")
    for role in ("auditor", "admin", "staff", "designer"):
        add_user(service, f"{role}_user", [role])
    with LiveServer(create_app(service.settings, service)) as live, \
            httpx.Client(base_url=live.url, timeout=60) as http:
        yield http


def test_http_case_path_for_trace_readers(server: httpx.Client, service) -> None:
    case_id = service.list_cases(process_id="procurement")[-1]["id"]

    for role in ("auditor", "admin", "designer"):
        response = server.get(f"/api/cases/{case_id}/diagram.svg", headers=login(server, f"{role}_user"))
        assert response.status_code == 200, (role, response.text)
    # A staff user with no post or department in this case sees it as missing.
    hidden = server.get(f"/api/cases/{case_id}/diagram.svg", headers=login(server, "staff_user"))
    assert hidden.status_code == 404
    assert response.headers["content-type"] == "image/svg+xml"
    assert response.headers["cache-control"] == "private, no-cache"
    assert "default-src 'none'" in response.headers["content-security-policy"]
    assert response.headers["content-disposition"] == f"inline; filename*=UTF-8''case-{case_id}.svg"
    assert "visited" in classes(by_id(parse_svg(response.content))["Task_request"])

    anonymous = server.get(f"/api/cases/{case_id}/diagram.svg")
    assert anonymous.status_code == 401


def test_http_case_path_formats_and_errors(server: httpx.Client, service) -> None:
    case_id = service.list_cases(process_id="procurement")[-1]["id"]
    headers = login(server, "auditor_user")

    png = server.get(f"/api/cases/{case_id}/diagram.png", headers=headers)
    assert png.status_code == 200
    assert png.headers["content-type"] == "image/png"
    assert png.content.startswith(b"\x89PNG")
    pdf = server.get(f"/api/cases/{case_id}/diagram.pdf", headers=headers)
    assert pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF")

    english = server.get(f"/api/cases/{case_id}/diagram.svg", headers={**headers, "Accept-Language": "en"})
    assert "Path of the case" in texts(parse_svg(english.content))
    assert server.get("/api/cases/999/diagram.svg", headers=headers).status_code == 404
    assert server.get(f"/api/cases/{case_id}/diagram.gif", headers=headers).status_code == 422
    bad_zone = server.get(f"/api/cases/{case_id}/diagram.svg", params={"tz": "Mars/Olympus"}, headers=headers)
    assert bad_zone.status_code == 422
    assert "Mars/Olympus" in bad_zone.text


def test_http_heatmap_for_auditors_only(server: httpx.Client) -> None:
    url = "/api/definitions/procurement/versions/1/heatmap"

    for role in ("auditor", "admin"):
        response = server.get(f"{url}.svg", headers=login(server, f"{role}_user"))
        assert response.status_code == 200, (role, response.text)
        assert node_count(by_id(parse_svg(response.content))["Task_request"], " 次") == 5
    for role in ("staff", "designer"):
        assert server.get(f"{url}.svg", headers=login(server, f"{role}_user")).status_code == 403, role
    assert server.get(f"{url}.svg").status_code == 401

    headers = login(server, "auditor_user")
    png = server.get(f"{url}.png", params={"measure": "time"}, headers=headers)
    assert png.status_code == 200
    assert png.content.startswith(b"\x89PNG")
    assert server.get(f"{url}.svg", params={"measure": "colour"}, headers=headers).status_code == 422
    assert server.get("/api/definitions/procurement/versions/9/heatmap.svg", headers=headers).status_code == 404


# Command line

def test_cli_renders_case_path_and_heatmap(service, settings, clock, tmp_path: Path) -> None:
    deploy_shipped(service)
    case_id = run_demo(service, clock, "procurement", REWORK)[REWORK]

    case_file = tmp_path / "case.svg"
    drawn = run_cli(settings, "render", "--case", str(case_id), "-o", str(case_file), "--timezone", "UTC")
    assert drawn.returncode == 0, drawn.stderr
    assert f"Wrote {case_file}" in drawn.stdout
    assert len(orders(by_id(parse_svg(case_file.read_bytes()))["Task_evaluation"])) == 2

    heat_file = tmp_path / "heat.png"
    heat = run_cli(settings, "render", "procurement@1", "--heatmap", "--heat-by", "time", "-o", str(heat_file))
    assert heat.returncode == 0, heat.stderr
    assert heat_file.read_bytes().startswith(b"\x89PNG")

    default = run_cli(settings, "render", "procurement", "--heatmap", "--format", "svg", "-o", "-")
    assert default.returncode == 0, default.stderr
    # Task_procurement_plan ran twice in the rework case, more often than any other step.
    assert "heat-5" in classes(by_id(parse_svg(default.stdout.encode()))["Task_procurement_plan"])


@pytest.mark.parametrize(("arguments", "message"), [
    (["procurement", "--case", "1"], "--case draws one case on its own version"),
    (["--case", "1", "--heatmap"], "--case draws one case on its own version"),
    (["--heat-by", "time", "procurement"], "--heat-by applies to heat maps only"),
    (["--heatmap"], "--heatmap needs a deployed process"),
    (["--heatmap", "--file", "x.bpmn"], "draw deployed flowcharts only"),
    (["procurement@0", "--heatmap"], "is not of the form PROCESS or PROCESS@VERSION"),
])
def test_cli_rejects_mixed_options(service, settings, arguments: list[str], message: str) -> None:
    result = run_cli(settings, "render", *arguments)

    assert result.returncode == 2
    assert message in result.stderr


def test_cli_reports_unknown_case_and_zone(service, settings) -> None:
    missing = run_cli(settings, "render", "--case", "42")
    assert missing.returncode == 1
    assert "Case 42 does not exist." in missing.stderr

    zone = run_cli(settings, "render", "--case", "42", "--timezone", "Nowhere/Else")
    assert zone.returncode == 1
    assert "Time zone 'Nowhere/Else' is unknown" in zone.stderr


def test_control_events_count_per_step() -> None:
    # No engine code records control events yet, so this trace is written by hand in their expected shape.
    graph = FlowGraph([Edge("S", "A", "f1"), Edge("A", "E", "f2")], recorded={"A", "E"}, starts={"S"})
    events = [
        {"seq": 1, "kind": "case_started", "actor": "u", "at": "2026-12-01T01:00:00Z", "element_id": "p"},
        {"seq": 2, "kind": "task_ready", "actor": "u", "at": "2026-12-01T01:00:00Z", "element_id": "A",
         "task_id": "t1"},
        {"seq": 3, "kind": "control_failed", "actor": "system", "at": "2026-12-01T02:00:00Z", "element_id": "A"},
        {"seq": 4, "kind": "control_overridden", "actor": "admin", "at": "2026-12-01T02:10:00Z", "element_id": "A",
         "payload": {"reason": "负责人书面同意"}},
        {"seq": 5, "kind": "task_completed", "actor": "u", "at": "2026-12-01T03:00:00Z", "element_id": "A",
         "task_id": "t1"},
        {"seq": 6, "kind": "end_event_reached", "actor": "u", "at": "2026-12-01T03:00:00Z", "element_id": "E"},
    ]

    path = trace_case_path(events, graph)
    statistics = summarize_paths([("completed", path)])

    assert [(visit.order, visit.element_id) for visit in path.visits] == [(1, "S"), (2, "A"), (3, "E")]
    assert path.flow_counts == Counter({"f1": 1, "f2": 1})
    assert path.durations == [("A", 7200.0)]
    assert statistics.step("A").risk_events == Counter({"control_failed": 1, "control_overridden": 1})
    assert statistics.step("A").risk_event_count == 2
    assert statistics.case_risk_events == Counter()
