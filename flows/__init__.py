"""IVR flows: the JSON graph format, its validator, the interpreter, the simulator and test runner.

Flows see calls only through :mod:`core.call`; services from other areas arrive by injection
(:class:`flows.services.FlowServices`).
"""
