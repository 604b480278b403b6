"""The audit trail: who did or tried what, on which object, and the decision.

    trail.py       the append-only table of one service and its queries
    middleware.py  records every /v1 request after its response is sent
"""
