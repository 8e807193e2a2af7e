"""Email verification: syntax, DNS and SMTP probing, one answer per address."""

from core.verify.result import Result
from core.verify.status import STATUS_TABLE, Category, Classifier, Status

__all__ = ["Result", "Status", "Category", "Classifier", "STATUS_TABLE"]
