"""Job states and the only moves between them (issue 3 §4).

    queued → running → awaiting_approval → approved → applying → done
    running → done (verify-list, bulk-file) | paused (out of credits; resume → queued)
    any live state → failed | cancelled;  awaiting_approval → expired (or cancelled when rejected)

A move is one conditional UPDATE (`... WHERE id = ? AND state IN (...)`): whoever's update
changes the row made the move, so two approvers or a double click approve exactly once.
`preparing` is internal: a bulk-file job while its upload is being read, before anyone may run it.
"""

from __future__ import annotations

from enum import StrEnum


class State(StrEnum):
    PREPARING = "preparing"
    QUEUED = "queued"
    RUNNING = "running"
    PAUSED = "paused"
    AWAITING_APPROVAL = "awaiting_approval"
    APPROVED = "approved"
    APPLYING = "applying"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


FINISHED = frozenset({State.DONE, State.FAILED, State.CANCELLED, State.EXPIRED})
RUNNABLE = frozenset({State.QUEUED, State.RUNNING, State.APPROVED, State.APPLYING})  # a runner may claim these
WORKING = frozenset({State.RUNNING, State.APPLYING})  # a runner holds the lease
CANCELLABLE = frozenset({State.PREPARING, State.QUEUED, State.RUNNING, State.PAUSED, State.AWAITING_APPROVAL,
                         State.APPROVED, State.APPLYING})

MOVES: dict[State, frozenset[State]] = {
    State.PREPARING: frozenset({State.QUEUED, State.CANCELLED, State.FAILED}),
    State.QUEUED: frozenset({State.RUNNING, State.CANCELLED, State.FAILED}),
    State.RUNNING: frozenset({State.AWAITING_APPROVAL, State.DONE, State.PAUSED, State.FAILED, State.CANCELLED}),
    State.PAUSED: frozenset({State.QUEUED, State.CANCELLED}),
    State.AWAITING_APPROVAL: frozenset({State.APPROVED, State.CANCELLED, State.EXPIRED, State.DONE}),
    State.APPROVED: frozenset({State.APPLYING, State.CANCELLED, State.FAILED}),
    State.APPLYING: frozenset({State.DONE, State.FAILED, State.CANCELLED}),
}


def sources_of(target: State) -> frozenset[State]:
    """Every state from which `target` may be reached."""
    return frozenset(s for s, targets in MOVES.items() if target in targets)


class JobStateError(RuntimeError):
    """The job is not in a state that allows this; the message says what state it is in."""
