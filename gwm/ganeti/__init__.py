"""gwm's one door to Ganeti: clients from a cluster's stored connection, the read tiers,
what each RAPI failure means to gwm, and gwm's words in Ganeti's language.

Nothing here writes the database; the services write what these modules read.
"""
