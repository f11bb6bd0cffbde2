"""Opcodes by resource: what each accepts (what rlib2's FillOpcode checks) and does.

Each opcode checks its prerequisites first (OpPrereqError: nothing changed
yet), then logs, takes its time and changes the cluster, the way Ganeti's
logical units do. ``registry`` declares them, ``context`` is what they see
while they run, ``catalogue`` joins them all.
"""
