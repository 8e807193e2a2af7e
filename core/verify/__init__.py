"""Email verification: syntax, DNS and SMTP probing, one answer per address.

    verifier = Verifier(VerifierConfig(mail_from="verify@example.com"))
    result = await verifier.verify("ann@example.org")
    async for result in verifier.verify_many(lines): ...
"""

from core.verify.config import VerifierConfig
from core.verify.result import Result
from core.verify.status import STATUS_TABLE, Category, Classifier, Status
from core.verify.verifier import ConfigurationError, Verifier

__all__ = ["Verifier", "VerifierConfig", "ConfigurationError", "Result", "Status", "Category", "Classifier",
           "STATUS_TABLE"]
