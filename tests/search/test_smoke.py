"""Smoke: the search endpoint finds what was written (the full suite is in the other modules)."""

from __future__ import annotations

from tests.conftest import Api, Factory


async def test_finds_a_message_and_a_title(api: Api, user: str, create_thread: Factory) -> None:
    t1 = await create_thread(
        title="Trip to Zürich", messages=[{"role": "user", "content": "Book a <b>hotel</b> & café near the lake"}]
    )
    t2 = await create_thread(title="Other", messages=[{"role": "user", "content": "東京都に住む人"}])
    r = await api.request("GET", "/api/search", user=user, params={"q": "cafe hot"})
    assert r.status_code == 200, r.text
    body = r.json()
    print(body)
    assert [x["thread"]["id"] for x in body["data"]] == [t1["id"]]
    r = await api.request("GET", "/api/search", user=user, params={"q": "zurich"})
    assert [x["thread"]["id"] for x in r.json()["data"]] == [t1["id"]], r.text
    assert r.json()["data"][0]["matches"][0]["message_id"] is None
    r = await api.request("GET", "/api/search", user=user, params={"q": "京都"})
    assert [x["thread"]["id"] for x in r.json()["data"]] == [t2["id"]], r.text
    print(r.json())
    r = await api.request("GET", "/api/search", user=user, params={"q": "cafe -zurich"})
    assert r.json()["data"] == [], r.text
    r = await api.request("GET", "/api/search", user="someone-else", params={"q": "cafe"})
    assert r.json()["data"] == [], r.text
