"""What each verification status means: the one table every part of Listwarden reads.

Cleanup categories (seed 000), the score band, the classifier, refunds, the words and emoji
Slack shows: all are looked up here, never re-decided elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Status(StrEnum):
    VALID = "valid"
    INVALID = "invalid"
    DISPOSABLE = "disposable"
    CATCH_ALL = "catch_all"
    UNKNOWN = "unknown"
    RISKY = "risky"
    SPAMTRAP = "spamtrap"
    ROLE_ACCOUNT = "role_account"


class Category(StrEnum):
    """The five cleanup categories of seed 000; risky, spamtrap and role_account share one."""

    INVALID = "invalid"
    DISPOSABLE = "disposable"
    CATCH_ALL = "catch_all"
    UNKNOWN = "unknown"
    RISKY = "risky"


class Classifier(StrEnum):
    VALID = "valid"
    RISKY = "risky"
    INVALID = "invalid"


@dataclass(frozen=True)
class StatusInfo:
    category: Category | None  # None: never cleaned (valid)
    classifier: Classifier
    score_range: tuple[int, int]  # CampaignKit bands: 10 safe, 7-9 minor, 4-6 risky (role, catch-all, disposable), 1-3 likely invalid, 0 bounce
    refunded: bool  # charged credits come back (seed 000: unknown results auto-refund)
    deliverable: bool | None  # None: cannot be known
    emoji: str
    meaning: str


STATUS_TABLE: dict[Status, StatusInfo] = {
    Status.VALID: StatusInfo(None, Classifier.VALID, (7, 10), False, True, ":white_check_mark:",
                             "The mailbox exists and accepts mail."),
    Status.INVALID: StatusInfo(Category.INVALID, Classifier.INVALID, (0, 3), False, False, ":x:",
                               "Mail to this address will bounce."),
    Status.DISPOSABLE: StatusInfo(Category.DISPOSABLE, Classifier.RISKY, (4, 4), False, None, ":wastebasket:",
                                  "A throwaway address from a disposable-mail provider."),
    Status.CATCH_ALL: StatusInfo(Category.CATCH_ALL, Classifier.RISKY, (4, 6), False, None, ":grey_question:",
                                 "The domain accepts every address, so this mailbox cannot be confirmed."),
    Status.UNKNOWN: StatusInfo(Category.UNKNOWN, Classifier.RISKY, (4, 5), True, None, ":hourglass:",
                               "No definite answer (the server was unreachable or deferred); the credit is refunded."),
    Status.RISKY: StatusInfo(Category.RISKY, Classifier.RISKY, (4, 6), False, None, ":warning:",
                             "Deliverable today but likely to bounce or hurt reputation."),
    Status.SPAMTRAP: StatusInfo(Category.RISKY, Classifier.INVALID, (0, 2), False, None, ":rotating_light:",
                                "A known spam trap: mailing it damages sender reputation."),
    Status.ROLE_ACCOUNT: StatusInfo(Category.RISKY, Classifier.RISKY, (5, 6), False, True, ":busts_in_silhouette:",
                                    "A shared role mailbox (info@, support@...), not a person."),
}


def info(status: Status | str) -> StatusInfo:
    return STATUS_TABLE[Status(status)]


def category_of(status: Status | str) -> Category | None:
    return STATUS_TABLE[Status(status)].category
