"""Inspection rules (Ironic API 1.96): conditions on a node's inspection data and the
actions to take when they hold.

Pure, standard library only, importable from every layer: the API validates a rule
with :mod:`.spec` before it stores it, the conductor evaluates stored rules with
:func:`.engine.evaluate` after an inspection and applies the resulting changes
(:mod:`metalcast.conductor.inspection_rules`).

Errors::

    InvalidInput
    └── InvalidRule     a rule body the API refuses (400), saying what to fix
    MetalcastError
    └── RuleFailed      a stored rule that cannot be evaluated on this data
"""
