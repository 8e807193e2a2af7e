"""The answer for one address."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from core.verify.status import Classifier, Status

Check = Literal["pass", "fail", "n/a"]


@dataclass(frozen=True)
class Result:
    email: str  # as given
    normalized: str  # domain lower-cased and in punycode; "" when the syntax is invalid
    status: Status
    score: int  # 0-10
    classifier: Classifier
    flags: tuple[str, ...] = ()
    syntax: Check = "n/a"
    mx: Check = "n/a"
    mailbox: Check = "n/a"
    smtp_code: int | None = None
    smtp_message: str | None = None
    mx_host: str | None = None
    suggestion: str | None = None
    reason: str = ""  # one plain sentence for people (Slack, CLI)
    extra: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["status"] = str(self.status)
        data["classifier"] = str(self.classifier)
        data["flags"] = list(self.flags)
        data.pop("extra", None)
        return data
