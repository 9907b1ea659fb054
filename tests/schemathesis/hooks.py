"""Schemathesis hooks for fundledger: value generators for the two formats the OpenAPI document
names beside a pattern, because a pattern cannot say them: `gb11643` (a resident ID number whose
birth date is a real day, not after today, and whose last character is the MOD 11-2 check
character) and `gb32100` (a unified social credit code with its modulo-31 check character).
Without them nearly every generated ID number would be refused for its check character, and
the positive tests would test nothing past it."""

import datetime

import schemathesis
from hypothesis import strategies as st

ID_WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
ID_CHECK = "10X98765432"
CREDIT_CHARSET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
CREDIT_WEIGHTS = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28]


def id_number(address: str, born: datetime.date, sequence: int) -> str:
    first = f"{address}{born:%Y%m%d}{sequence:03d}"
    total = sum(int(d) * w for d, w in zip(first, ID_WEIGHTS))
    return first + ID_CHECK[total % 11]


def credit_code(head: str, division: str, organisation: str) -> str:
    first = head + division + organisation
    total = sum(CREDIT_CHARSET.index(c) * w for c, w in zip(first, CREDIT_WEIGHTS))
    return first + CREDIT_CHARSET[(31 - total % 31) % 31]


ID_NUMBERS = st.builds(
    id_number,
    st.from_regex(r"\A(0[1-9]|[1-9][0-9])[0-9]{4}\Z"),
    st.dates(min_value=datetime.date(1900, 1, 1), max_value=datetime.date.today()),
    st.integers(min_value=0, max_value=999),
)
CREDIT_CODES = st.builds(
    credit_code,
    st.text(alphabet=CREDIT_CHARSET, min_size=2, max_size=2),
    st.from_regex(r"\A[0-9]{6}\Z"),
    st.text(alphabet=CREDIT_CHARSET, min_size=9, max_size=9),
)

schemathesis.openapi.format("gb11643", ID_NUMBERS)
schemathesis.openapi.format("gb32100", CREDIT_CODES)


# The contract (API.md) answers 422 to a well-formed request that recorded state or policy
# refuses (pool_not_found, no_policy_in_force, balance_date_mismatch, not_eligible, a county
# not registered, a date in the future), so schemathesis.toml lets positive_data_acceptance
# accept 422. This check keeps what that check is for: a request valid by the schema must not
# be refused for its form. It fails a positive case answered 400, 413 or 415, or 422 whose
# reason is a rule of form the schema states (serde's type, variant and field errors, the
# identifier and money parsers, the bounds of parameters).
FORM_REASONS = (
    "invalid type",
    "invalid value",
    "invalid length",
    "unknown variant",
    "unknown field",
    "missing field",
    "ID number:",
    "unified social credit code:",
    "occupation code:",
    "division code:",
    "amount:",
    "ratio:",
    "must not contain the NUL",
    "visible ASCII",
    "is not a policy year",
    "is not a status",
    "a month is YYYY-MM",
    "must be between",
    "must be 0 or a position",
    "a position of 1 or more",
)


@schemathesis.check
def positive_data_refused_for_its_form(ctx, response, case):
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive:
        return None
    try:
        from schemathesis.specs.openapi.checks import is_unexpected_http_status_case

        if is_unexpected_http_status_case(case):
            return None
    except ImportError:
        pass
    status = response.status_code
    if status in (400, 413, 415):
        raise AssertionError(f"A request valid by the schema was refused with {status}")
    if status == 422:
        try:
            problem = response.json()
        except ValueError:
            problem = {}
        messages = [e.get("message", "") for e in problem.get("errors", [])] or [problem.get("detail", "")]
        if problem.get("code") == "validation_failed" and any(
            marker in message for message in messages for marker in FORM_REASONS
        ):
            raise AssertionError(f"A request valid by the schema was refused for its form: {messages}")
    return None
