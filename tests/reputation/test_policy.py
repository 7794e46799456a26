"""Policy: bands → actions, per-user strictness and choices, reject signalling, monitor mode."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from reputation.config import PolicyConfig
from reputation.model import ActionKind, Reason, Score
from reputation.policy import band_of, decide, score_header, thresholds
from reputation.users import UserSettings

CFG = PolicyConfig()


@dataclass(frozen=True)
class User:
    monitor: bool | None = None
    strictness: str | None = None
    anonymous: str | None = None
    reject_code: int | None = None
    band_actions: tuple[tuple[str, str], ...] = ()

    def band_action(self, band: str) -> str | None:
        return dict(self.band_actions).get(band)


def score(value: float, *signals: str, override: str | None = None) -> Score:
    return Score(value=value, reasons=tuple(Reason(s, 1.0, s) for s in signals), override=override)


@pytest.mark.parametrize(
    ("value", "band", "action"),
    [
        (0.0, "ok", ActionKind.FORWARD),
        (24.99, "ok", ActionKind.FORWARD),
        (25.0, "suspicious", ActionKind.FORWARD_TAGGED),
        (49.0, "suspicious", ActionKind.FORWARD_TAGGED),
        (50.0, "likely", ActionKind.CHALLENGE),
        (75.0, "spam", ActionKind.VOICEMAIL),
        (89.9, "spam", ActionKind.VOICEMAIL),
        (90.0, "certain", ActionKind.REJECT),
        (100.0, "certain", ActionKind.REJECT),
    ],
)
def test_default_bands(value: float, band: str, action: ActionKind) -> None:
    d = decide(score(value, "pattern.fanout"), CFG)
    assert (d.band, d.action) == (band, action)
    assert not d.monitor


@pytest.mark.parametrize(
    ("strictness", "value", "band"),
    [
        ("strict", 15.0, "suspicious"),
        ("strict", 40.0, "likely"),
        ("strict", 80.0, "certain"),
        ("lenient", 30.0, "ok"),
        ("lenient", 95.0, "spam"),
        ("normal", 30.0, "suspicious"),
        (None, 30.0, "suspicious"),
    ],
)
def test_strictness_shifts_thresholds(strictness: str | None, value: float, band: str) -> None:
    assert band_of(value, thresholds(CFG, User(strictness=strictness))) == band


def test_per_user_band_action() -> None:
    u = User(band_actions=(("certain", "voicemail"), ("suspicious", "forward")))
    assert decide(score(95.0), CFG, u).action is ActionKind.VOICEMAIL
    assert decide(score(30.0), CFG, u).action is ActionKind.FORWARD
    assert decide(score(60.0), CFG, u).action is ActionKind.CHALLENGE
    # a nonsense action falls back to the deployment default
    assert decide(score(60.0), CFG, User(band_actions=(("likely", "explode"),))).action is (
        ActionKind.CHALLENGE
    )


def test_tag_header() -> None:
    d = decide(score(40.0, "shaken.attest_c", "neighbor.exchange"), CFG)
    assert d.action is ActionKind.FORWARD_TAGGED and d.label == "spam-suspected"
    assert d.headers == (
        ("X-Spitwall-Score", '40;label=spam-suspected;reasons="shaken.attest_c,neighbor.exchange"'),
    )


def test_score_header_lists_only_spam_evidence() -> None:
    s = Score(12.0, (Reason("shaken.attest_a", -0.8), Reason("pattern.new_number", 0.3)))
    assert score_header(s, "ok") == '12;label=ok;reasons="pattern.new_number"'
    assert score_header(Score(3.0), "ok") == "3;label=ok"


@pytest.mark.parametrize("override", ["emergency", "allow_list", "critical_caller"])
def test_allowing_overrides_forward_untouched(override: str) -> None:
    d = decide(score(0.0, "list.user_allow", override=override), PolicyConfig(monitor=True), User(
        strictness="strict", anonymous="reject"))  # fmt: skip
    assert d.action is ActionKind.FORWARD and d.headers == () and d.band == override


@pytest.mark.parametrize("override", ["dno", "invalid_number"])
def test_blocking_overrides_reject(override: str) -> None:
    d = decide(score(100.0, "list.dno", override=override), CFG)
    assert d.action is ActionKind.REJECT and d.reject_code == 608 and d.band == override
    assert d.reason_phrase == "Rejected"


def test_reject_608_with_jcard_redress() -> None:
    cfg = PolicyConfig(
        redress_uri="https://redress.example/jcard.jws", redress_contact="tel:+18005550100"
    )
    d = decide(score(97.0, "pattern.fanout", "shaken.attest_c"), cfg)
    assert (d.reject_code, d.reason_phrase) == (608, "Rejected")
    h = dict(d.headers)
    assert h["Call-Info"] == "<https://redress.example/jcard.jws>;purpose=jwscard"
    assert h["Reason"].startswith('SIP;cause=608;text="spam score 97 (pattern.fanout')
    assert "redress tel:+18005550100" in h["Reason"]


def test_reject_603_network_blocked() -> None:
    cfg = PolicyConfig(reject_code=603, network_blocked_phrase=True, redress_uri="https://r/x")
    d = decide(score(97.0, "pattern.fanout"), cfg)
    assert (d.reject_code, d.reason_phrase) == (603, "Network Blocked")
    assert "Call-Info" not in dict(d.headers)  # jCard pointer is a 608 feature
    d2 = decide(score(97.0), PolicyConfig(reject_code=603))
    assert d2.reason_phrase == "Decline"


def test_user_block_rejects_607_and_user_code_choice() -> None:
    d = decide(score(99.0, "list.user_block"), CFG)
    assert (d.reject_code, d.reason_phrase) == (607, "Unwanted")
    assert decide(score(99.0, "pattern.fanout"), CFG, User(reject_code=603)).reject_code == 603


def test_reason_header_is_a_safe_quoted_string() -> None:
    s = Score(99.0, (Reason('bad"name\\', 5.0),))
    (_, value) = decide(s, CFG).headers[0]
    inner = value.split('text="', 1)[1][:-1]
    assert '"' not in inner and "\\" not in inner


@pytest.mark.parametrize(
    ("user_choice", "deployment", "action", "code"),
    [
        ("reject", "score", ActionKind.REJECT, 433),
        ("challenge", "score", ActionKind.CHALLENGE, None),
        ("voicemail", "score", ActionKind.VOICEMAIL, None),
        ("forward", "reject", ActionKind.FORWARD, None),
        (None, "challenge", ActionKind.CHALLENGE, None),
        (None, "score", ActionKind.FORWARD_TAGGED, None),
    ],
)
def test_anonymous_handling(
    user_choice: str | None, deployment: str, action: ActionKind, code: int | None
) -> None:
    cfg = PolicyConfig(anonymous=deployment)  # type: ignore[arg-type]
    d = decide(score(30.0, "number.anonymous"), cfg, User(anonymous=user_choice))
    assert d.action is action and d.reject_code == code
    if code == 433:
        assert d.reason_phrase == "Anonymity Disallowed"
        assert "anonymous" in dict(d.headers)["Reason"]


@pytest.mark.parametrize(
    ("deployment", "user", "value", "monitored", "intended"),
    [
        (True, None, 97.0, True, ActionKind.REJECT),
        (True, None, 60.0, True, ActionKind.CHALLENGE),
        (True, None, 10.0, True, None),
        (False, True, 80.0, True, ActionKind.VOICEMAIL),
        (True, False, 97.0, False, None),
        (False, None, 97.0, False, None),
    ],
)
def test_monitor_mode(
    deployment: bool, user: bool | None, value: float, monitored: bool, intended: ActionKind | None
) -> None:
    d = decide(score(value, "pattern.fanout"), PolicyConfig(monitor=deployment), User(monitor=user))
    assert d.monitor is monitored
    assert d.intended is intended
    if monitored:
        assert d.action in (ActionKind.FORWARD, ActionKind.FORWARD_TAGGED)
        assert d.reject_code is None
        assert d.headers and d.headers[0][0] == "X-Spitwall-Score"
    else:
        assert d.action is not ActionKind.FORWARD or value < 25


def test_monitor_blocks_nothing_even_on_dno() -> None:
    d = decide(score(100.0, "list.dno", override="dno"), PolicyConfig(monitor=True))
    assert d.action is ActionKind.FORWARD and d.intended is ActionKind.REJECT and d.monitor


def test_store_user_settings_fit_the_policy() -> None:
    u = UserSettings(strictness="strict", band_actions=(("likely", "voicemail"),))
    assert decide(score(45.0), CFG, u).action is ActionKind.VOICEMAIL
