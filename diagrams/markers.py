"""The markers inside BPMN shapes: event triggers, gateway types, task types and loop kinds.

Glyphs come from Noto Sans CJK SC where it has a fitting one. The others (✉ ◷ ⚡ ⬠ ↻) are drawn from
the fallback font that fontconfig picks. Task types are short words, not icons, so they read in print.
"""

from __future__ import annotations

from engine.i18n import Message, msg

# (catching glyph, throwing glyph) by event definition. BPMN fills a throwing marker, and where the
# fonts have no filled form the glyph is the same.
EVENT_GLYPHS = {
    "messageEventDefinition": ("✉", "✉"),
    "timerEventDefinition": ("◷", "◷"),
    "errorEventDefinition": ("⚡", "⚡"),
    "escalationEventDefinition": ("⇧", "⬆"),
    "cancelEventDefinition": ("×", "×"),
    "compensateEventDefinition": ("◀◀", "◀◀"),
    "conditionalEventDefinition": ("≡", "≡"),
    "linkEventDefinition": ("→", "→"),
    "signalEventDefinition": ("△", "▲"),
    "terminateEventDefinition": ("●", "●"),
}
# An event with several triggers, or one whose definition is a reference this reader does not follow.
MULTIPLE_GLYPHS = ("⬠", "⬟")

GATEWAY_GLYPHS = {
    "exclusiveGateway": "×",
    "parallelGateway": "+",
    "inclusiveGateway": "○",
    "eventBasedGateway": "⬠",
    "complexGateway": "*",
}

LOOP_GLYPHS = {"parallel": "|||", "sequential": "≡", "standard": "↻"}
COLLAPSED_GLYPH = "[+]"
COMPENSATION_GLYPH = "◀◀"
AD_HOC_GLYPH = "~"

# Meaning of each event trigger and gateway type, as the legend states it.
MARKER_MEANINGS: dict[str, Message] = {
    "messageEventDefinition": msg("message event"),
    "timerEventDefinition": msg("timer event"),
    "errorEventDefinition": msg("error event"),
    "escalationEventDefinition": msg("escalation event"),
    "cancelEventDefinition": msg("cancel event"),
    "compensateEventDefinition": msg("compensation event"),
    "conditionalEventDefinition": msg("conditional event"),
    "linkEventDefinition": msg("link event"),
    "signalEventDefinition": msg("signal event"),
    "terminateEventDefinition": msg("terminate end event"),
    "multiple": msg("event with several triggers"),
    "exclusiveGateway": msg("exclusive gateway: one path"),
    "parallelGateway": msg("parallel gateway: all paths"),
    "inclusiveGateway": msg("inclusive gateway: one or more paths"),
    "eventBasedGateway": msg("event-based gateway: the first event decides"),
    "complexGateway": msg("complex gateway"),
}

TASK_TAGS: dict[str, Message] = {
    "userTask": msg("user task"),
    "manualTask": msg("manual task"),
    "serviceTask": msg("service task"),
    "scriptTask": msg("script task"),
    "sendTask": msg("send task"),
    "receiveTask": msg("receive task"),
    "businessRuleTask": msg("business rule task"),
    "callActivity": msg("call activity"),
    "subProcess": msg("subprocess"),
    "transaction": msg("transaction"),
    "adHocSubProcess": msg("ad hoc subprocess"),
}


def event_glyph(definitions: tuple[str, ...], throwing: bool) -> str:
    """Return the marker of an event with these event definitions; empty for a none event."""
    if not definitions:
        return ""
    if len(definitions) == 1 and definitions[0] in EVENT_GLYPHS:
        catching, thrown = EVENT_GLYPHS[definitions[0]]
        return thrown if throwing else catching
    return MULTIPLE_GLYPHS[1] if throwing else MULTIPLE_GLYPHS[0]


def activity_markers(loop: str | None, collapsed: bool, is_compensation: bool, kind: str) -> str:
    """Return the markers shown at the bottom of an activity, such as ``||| [+]``."""
    markers = []
    if loop:
        markers.append(LOOP_GLYPHS[loop])
    if kind == "adHocSubProcess":
        markers.append(AD_HOC_GLYPH)
    if is_compensation:
        markers.append(COMPENSATION_GLYPH)
    if collapsed:
        markers.append(COLLAPSED_GLYPH)
    return " ".join(markers)
