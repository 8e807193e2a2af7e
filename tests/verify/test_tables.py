"""The status table and the reference data: complete, consistent with CampaignKit's bands, sourced."""

from __future__ import annotations

from importlib import resources

import pytest

from core.verify.status import STATUS_TABLE, Category, Classifier, Status
from core.verify.tables import is_disposable, is_free_provider, is_role, known_not_catch_all, suggest_domain

BANDS = {Classifier.VALID: range(7, 11), Classifier.RISKY: range(4, 7), Classifier.INVALID: range(0, 4)}


def test_every_status_has_one_row_with_a_score_band_inside_its_classifier():
    assert set(STATUS_TABLE) == set(Status)
    for status, row in STATUS_TABLE.items():
        low, high = row.score_range
        assert 0 <= low <= high <= 10, status
        assert low in BANDS[row.classifier] and high in BANDS[row.classifier], status


def test_cleanup_categories_follow_seed_000():
    assert STATUS_TABLE[Status.VALID].category is None
    assert {STATUS_TABLE[s].category for s in (Status.RISKY, Status.SPAMTRAP, Status.ROLE_ACCOUNT)} == {Category.RISKY}
    assert [s for s, row in STATUS_TABLE.items() if row.refunded] == [Status.UNKNOWN]


def test_every_data_table_says_where_it_comes_from():
    readme = resources.files("core.verify").joinpath("data", "README.md").read_text()
    for table in resources.files("core.verify").joinpath("data").iterdir():
        if table.name.endswith(".txt"):
            assert table.name in readme, table.name


@pytest.mark.parametrize("local", ["info", "Info", "no-reply", "no_reply", "postmaster", "support+tag"])
def test_role_local_parts(local):
    assert is_role(local)


@pytest.mark.parametrize("local", ["ann", "john.smith", "infographics"])
def test_people_are_not_roles(local):
    assert not is_role(local)


def test_lists():
    assert is_disposable("mailinator.com") and is_disposable("mx.mailinator.com") and not is_disposable("gmail.com")
    assert is_free_provider("gmail.com") and not is_free_provider("acme.example")
    assert known_not_catch_all("gmail.com") and not known_not_catch_all("acme.example")


@pytest.mark.parametrize("typed,meant", [
    ("gmial.com", "gmail.com"), ("gmal.com", "gmail.com"), ("hotmial.com", "hotmail.com"),
    ("yaho.com", "yahoo.com"), ("outlok.com", "outlook.com"), ("gmx.dee", "gmx.de"), ("gmail.con", "gmail.com"),
])
def test_typo_suggestions(typed, meant):
    assert suggest_domain(typed) == meant


@pytest.mark.parametrize("domain", ["gmail.com", "acme-industries.com", "bigcorp.de"])
def test_no_suggestion_for_popular_or_unrelated_domains(domain):
    assert suggest_domain(domain) is None
