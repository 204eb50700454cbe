"""Signed incident-page links: a browser opens one incident's page read-only, without the token.

A link is scoped to one incident, expires, and reveals nothing of the token; a wrong, expired or
other incident's signature, a link used on another path or with another method gets nothing.
"""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.receiver.conftest import TOKEN, alert, payload, receiver_config
from tts_sentinel.receiver.incident_links import IncidentLinks, link_key_from_token
from tts_sentinel.receiver.service import receiver_links

DAY = 86400.0


def links(ttl: float = DAY) -> IncidentLinks:
    return IncidentLinks(link_key_from_token(TOKEN), "http://127.0.0.1:9465", ttl)


def split(path: str) -> tuple[str, str]:
    parts = urlsplit(path)
    return parts.path, parts.query


# -- the signature ----------------------------------------------------------------------------
def test_a_link_opens_its_own_incident_until_it_expires():
    made = links()
    now = 1_800_000_000.0
    path, query = split(made.path(7, now=now))
    assert path == "/incidents/7" and set(parse_qs(query)) == {"exp", "sig"}
    assert made.check(path, query, now=now) == "ok"
    assert made.check(path, query, now=now + DAY - 1) == "ok"
    assert made.check(path, query, now=now + DAY + 1) == "expired"


@pytest.mark.parametrize("change", ["other incident", "flipped digit", "later expiry", "other key", "list page",
                                    "sub-path", "no exp", "two sigs", "empty sig"])
def test_a_tampered_or_misplaced_link_is_invalid(change):
    made = links()
    now = 1_800_000_000.0
    path, query = split(made.path(7, now=now))
    args = {k: v[0] for k, v in parse_qs(query).items()}
    if change == "other incident":
        path = "/incidents/8"
    elif change == "flipped digit":
        args["sig"] = args["sig"][:-1] + ("0" if args["sig"][-1] != "0" else "1")
    elif change == "later expiry":
        args["exp"] = str(int(args["exp"]) + 3600)
    elif change == "other key":
        made = IncidentLinks(link_key_from_token("another-token-0123456789"), made.base_url, DAY)
    elif change == "list page":
        path = "/incidents"
    elif change == "sub-path":
        path = "/incidents/7/../8"
    elif change == "no exp":
        del args["exp"]
    elif change == "two sigs":
        query = f"exp={args['exp']}&sig={args['sig']}&sig={args['sig']}"
    elif change == "empty sig":
        args["sig"] = ""
    if change != "two sigs":
        query = "&".join(f"{k}={v}" for k, v in args.items())
    assert made.check(path, query, now=now) == "invalid"


def test_a_link_carries_neither_the_token_nor_anything_that_opens_more():
    made = links()
    url = made.url(3)
    assert TOKEN not in url and link_key_from_token(TOKEN).hex() not in url
    assert url.startswith("http://127.0.0.1:9465/incidents/3?exp=")
    assert made.check("/incidents/3", "", now=0) == "absent"  # no link at all: the token is asked for
    assert IncidentLinks(None, "http://x", DAY).path(3) == "/incidents/3"  # --insecure: nothing to sign


def test_a_key_file_replaces_the_token_derived_key(tmp_path):
    key = tmp_path / "link.key"
    key.write_text("0123456789abcdef0123456789abcdef\n")
    key.chmod(0o600)
    config = receiver_config(None, None, incident_page={"link_key_file": str(key),
                                                        "public_url": "https://sentinel.example:8443"})
    own = receiver_links(config, TOKEN)
    assert own.url(1).startswith("https://sentinel.example:8443/incidents/1?")
    path, query = split(own.path(1))
    assert own.check(path, query) == "ok" and links().check(path, query) == "invalid"
    key.chmod(0o644)
    with pytest.raises(ValueError, match="chmod 600"):
        receiver_links(config, TOKEN)


# -- through the real receiver ----------------------------------------------------------------
@pytest.fixture
def receiver(make_receiver):
    r = make_receiver(receiver_config(None, None, dry_run=True))
    for name in ("TtsHealthProbeFailing", "TtsCudaOutOfMemory"):  # two families: two incidents
        tier = "light" if name == "TtsHealthProbeFailing" else "medium"
        r.wait_job(r.post(payload(alert(name, tier=tier, summary=f"{name} secret-{name}"))).json()["new_jobs"][0])
    return r


def test_the_page_url_opens_in_a_plain_browser_request(receiver):
    incidents = receiver.incidents()
    assert len(incidents) == 2
    for incident in incidents:
        url = incident["page_url"]
        assert TOKEN not in url
        page = receiver.client.get(urlsplit(url).path + "?" + urlsplit(url).query)  # no Authorization header
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html"), page.text
        assert f"Incident {incident['id']} on qwen3-tts" in page.text
        assert TOKEN not in page.text
        assert page.headers["referrer-policy"] == "no-referrer" and "no-store" in page.headers["cache-control"]


def test_a_wrong_expired_or_other_incidents_link_gets_403_and_nothing_of_the_incident(receiver):
    first, second = sorted(receiver.incidents(), key=lambda i: i["id"])
    path, query = split(first["page_url"])
    other_path = f"/incidents/{second['id']}"
    expired_path, expired_query = split(receiver.service.links.path(first["id"], now=time.time() - 8 * DAY))
    tampered = query.replace("sig=", "sig=0")
    for url in (f"{other_path}?{query}", f"{path}?{tampered}", f"{expired_path}?{expired_query}",
                f"/incidents?{query}", f"/actions?{query}", f"{path}/x?{query}"):
        answer = receiver.client.get(url)
        assert answer.status_code == 403, (url, answer.status_code, answer.text)
        for leak in ("secret-", "qwen3-tts", "TtsHealthProbeFailing", "TtsCudaOutOfMemory", TOKEN):
            assert leak not in answer.text, (url, leak, answer.text)
    assert "expired" in receiver.client.get(f"{expired_path}?{expired_query}").json()["detail"]
    # read-only: the link never posts, and without any credential the token is asked for
    assert receiver.client.post(f"{path}?{query}", json={}).status_code == 403
    assert receiver.client.post(f"/alerts?{query}", json=payload(alert())).status_code == 403
    bare = receiver.client.get(path)
    assert bare.status_code == 401 and bare.headers["www-authenticate"] == "Bearer"
    # the token still opens every page, whatever link rides along
    assert receiver.client.get(f"{other_path}?{tampered}",
                               headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
