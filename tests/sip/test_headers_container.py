"""Headers: lookup (case, compact forms, comma lists) and non-mutating edits."""

from __future__ import annotations

import pytest

from proxy.sip import Headers, header_key

H = Headers(
    [
        ("Via", "SIP/2.0/UDP a.example.com;branch=z9hG4bK1, SIP/2.0/UDP b.example.com"),
        ("v", "SIP/2.0/TCP c.example.com;branch=z9hG4bK3"),
        ("f", "<sip:a@x>;tag=1"),
        ("To", "<sip:b@y>"),
        ("Contact", '"Doe, John" <sip:j@z;a=b,c>;q=0.5, <sip:k@z>'),
        ("Route", "<sip:p1;lr>"),
        ("route", "<sip:p2;lr>,<sip:p3;lr>"),
    ]
)


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("VIA", "via"),
        ("v", "via"),
        ("i", "call-id"),
        ("l", "content-length"),
        ("y", "identity"),
        ("x", "session-expires"),
        ("X-Custom", "x-custom"),
    ],
)
def test_header_key(name: str, key: str) -> None:
    assert header_key(name) == key


def test_lookup() -> None:
    assert H.get("FROM") == "<sip:a@x>;tag=1"
    assert H.get("missing") is None
    assert "t" in H and "Call-ID" not in H
    assert H.get_all("via") == [H[0][1], H[1][1]]
    assert H.values("Via") == [
        "SIP/2.0/UDP a.example.com;branch=z9hG4bK1",
        "SIP/2.0/UDP b.example.com",
        "SIP/2.0/TCP c.example.com;branch=z9hG4bK3",
    ]
    assert H.values("m") == ['"Doe, John" <sip:j@z;a=b,c>;q=0.5', "<sip:k@z>"]
    assert H.values("Route") == ["<sip:p1;lr>", "<sip:p2;lr>", "<sip:p3;lr>"]
    assert H.values("Subject") == []


def test_edits_return_new_objects() -> None:
    h2 = H.prepend("Via", "SIP/2.0/UDP proxy;branch=z9hG4bKp")
    assert h2[0] == ("Via", "SIP/2.0/UDP proxy;branch=z9hG4bKp") and H[0][0] == "Via"
    assert len(h2) == len(H) + 1 and h2.values("via")[1:] == H.values("via")
    assert H.add("X-A", "1")[-1] == ("X-A", "1")
    r = H.remove("route")
    assert "route" not in r and len(r) == len(H) - 2
    assert H.remove("nothing") is H


def test_remove_first_value() -> None:
    h = H.remove_first_value("via")
    assert h.values("via") == H.values("via")[1:]
    assert h[0] == ("Via", "SIP/2.0/UDP b.example.com")
    h = h.remove_first_value("via")
    assert h[0] == ("v", "SIP/2.0/TCP c.example.com;branch=z9hG4bK3")  # field dropped
    h = H.remove_first_value("Route").remove_first_value("Route")
    assert h.values("route") == ["<sip:p3;lr>"]
    assert h.get_all("route") == ["<sip:p3;lr>"]
    c = H.remove_first_value("Contact")
    assert c.values("contact") == ["<sip:k@z>"]


def test_replace_and_replace_first_value() -> None:
    h = H.replace("ROUTE", "<sip:only;lr>")
    assert h.get_all("route") == ["<sip:only;lr>"]
    assert [n for n, _ in h].count("Route") == 1  # first field keeps its spelling
    assert H.replace("Max-Forwards", "69")[-1] == ("Max-Forwards", "69")
    v = H.replace_first_value("via", "SIP/2.0/UDP a.example.com;branch=z9hG4bK1;received=1.2.3.4")
    assert v.values("via")[0].endswith("received=1.2.3.4")
    assert v.values("via")[1:] == H.values("via")[1:]


def test_equality_hash_and_raw() -> None:
    same = Headers(list(H))
    assert same == H and hash(same) == hash(H)
    assert H.raw is None
    assert H.to_bytes().startswith(b"Via: SIP/2.0/UDP a.example.com")
    assert Headers().to_bytes() == b""


@pytest.mark.parametrize(
    ("name", "value"), [("X-A", "a\r\nInjected: 1"), ("X A", "v"), ("", "v"), ("X-B", "a\nb")]
)
def test_edits_refuse_header_injection(name: str, value: str) -> None:
    with pytest.raises(ValueError):
        H.add(name, value)
    with pytest.raises(ValueError):
        Headers([(name, value)])
    with pytest.raises(ValueError):
        H.replace(name or "Via", value if name else "x\r\n")
