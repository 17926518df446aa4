"""Workflow core of liuhen: BPMN parsing with risk checkpoints, execution, trace and persistence."""
