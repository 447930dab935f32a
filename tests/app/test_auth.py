"""API keys → tenants: who may call what, and that no tenant ever reads another's documents."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given
from hypothesis import settings as hyp_settings
from hypothesis import strategies as st
from pydantic import SecretStr
from typer.testing import CliRunner

from app.auth import ADMIN, KeyRing, ensure_safe_bind
from app.cli import cli
from pipelines.embed.model import Embedder
from pipelines.errors import ConfigError
from pipelines.settings import Settings
from tests.keys import ADMIN_KEY, ALPHA, BRAVO, auth, keyed_api


@pytest.fixture()
def client(settings: Settings, embedder: Embedder) -> Iterator[TestClient]:
    with keyed_api(settings) as c:
        yield c


def test_keyring_parses_pairs_and_files(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    keys.write_text(f"# team keys\n{BRAVO}:bravo\n")
    ring = KeyRing.from_settings(
        Settings(api_keys=SecretStr(f"{ALPHA}:alpha"), api_keys_file=keys, admin_key=SecretStr(ADMIN_KEY))
    )
    assert (ring.principal(ALPHA), ring.principal(BRAVO), ring.principal(ADMIN_KEY)) == ("alpha", "bravo", ADMIN)
    assert ring.principal("alpha-key-012345678") is None
    assert all(ALPHA.encode() not in digest for digest, _ in ring.entries)  # only digests are kept
    for bad in ("short:alpha", f"{ALPHA}", f"{ALPHA}:../etc"):
        with pytest.raises(ConfigError):
            KeyRing.from_settings(Settings(api_keys=SecretStr(bad)))


def test_without_keys_only_loopback_may_be_bound() -> None:
    assert "auth off" in ensure_safe_bind(Settings(), "127.0.0.1")
    with pytest.raises(ConfigError, match=r"refusing to bind 0\.0\.0\.0"):
        ensure_safe_bind(Settings(), "0.0.0.0")
    assert "auth on" in ensure_safe_bind(Settings(api_keys=SecretStr(f"{ALPHA}:alpha")), "0.0.0.0")
    result = CliRunner().invoke(cli, ["serve", "--host", "0.0.0.0"], env={"DOCLAKE_API_KEYS": ""})
    assert result.exit_code == 2 and "refusing to bind 0.0.0.0" in result.output


def test_every_route_but_health_needs_a_key(client: TestClient) -> None:
    assert client.get("/healthz").status_code in (200, 503)
    assert client.get("/v1/documents").status_code == 401
    assert client.get("/v1/documents", headers=auth("wrong-key-0123456789")).status_code == 401
    assert client.get("/v1/documents", headers={"Authorization": ALPHA}).status_code == 401  # no scheme
    assert client.post("/v1/search", json={"query": "x"}).status_code == 401
    assert client.get("/v1/documents", headers=auth(ALPHA)).status_code == 200
    assert client.get("/v1/documents", headers=auth(ADMIN_KEY)).status_code == 403


def test_tenants_see_only_their_own_documents(client: TestClient) -> None:
    text = b"The alpha team's launch checklist: verify backups, then flip the feature flag."
    up = client.post("/v1/documents", files={"file": ("a.txt", text)}, data={"doc_id": "plan"}, headers=auth(ALPHA))
    assert up.status_code == 202
    assert client.get("/v1/documents/plan", headers=auth(ALPHA)).json()["status"] == "indexed"
    assert client.get("/v1/documents/plan", headers=auth(BRAVO)).status_code == 404
    assert client.delete("/v1/documents/plan", headers=auth(BRAVO)).status_code == 404
    assert client.get("/v1/documents", headers=auth(BRAVO)).json()["total"] == 0
    query = {"query": "launch checklist feature flag", "top_k": 10}
    assert client.post("/v1/search", json=query, headers=auth(BRAVO)).json()["results"] == []
    assert [r["doc_id"] for r in client.post("/v1/search", json=query, headers=auth(ALPHA)).json()["results"]] == [
        "plan"
    ]
    # The same doc_id in another tenant is another document.
    other = client.post(
        "/v1/documents", files={"file": ("b.txt", b"bravo notes")}, data={"doc_id": "plan"}, headers=auth(BRAVO)
    )
    assert other.json()["version"] == 1
    assert client.get("/v1/documents/plan", headers=auth(ALPHA)).json()["filename"] == "a.txt"


PHRASES = [
    "quarterly revenue grew in the northern region",
    "the reactor coolant pump needs a new seal",
    "migrate the billing database to the new cluster",
]
_counter = itertools.count()

ops = st.lists(
    st.tuples(
        st.sampled_from(["alpha", "bravo"]),
        st.sampled_from(["upload", "update", "delete"]),
        st.integers(min_value=0, max_value=2),  # which document of that tenant
        st.integers(min_value=0, max_value=len(PHRASES) - 1),
    ),
    min_size=1,
    max_size=5,
)


@hyp_settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sequence=ops)
def test_random_histories_never_leak_across_tenants(
    client: TestClient, sequence: list[tuple[str, str, int, int]]
) -> None:
    run = next(_counter)
    keys = {"alpha": ALPHA, "bravo": BRAVO}
    live: dict[str, set[str]] = {"alpha": set(), "bravo": set()}
    for tenant, action, n, phrase in sequence:
        doc_id = f"r{run}-d{n}"
        headers = auth(keys[tenant])
        if action in ("upload", "update"):
            body = f"{PHRASES[phrase]} ({tenant} {doc_id} {action})".encode()
            r = client.post("/v1/documents", files={"file": ("f.txt", body)}, data={"doc_id": doc_id}, headers=headers)
            assert r.status_code == 202
            live[tenant].add(doc_id)
        else:
            r = client.delete(f"/v1/documents/{doc_id}", headers=headers)
            assert r.status_code == (200 if doc_id in live[tenant] or r.status_code == 200 else 404)
            live[tenant].discard(doc_id)
    # Checked once the history is played: a leak or a resurrected delete would still be visible.
    for who, key in keys.items():
        for p in PHRASES:
            hits = client.post("/v1/search", json={"query": p, "top_k": 20}, headers=auth(key)).json()["results"]
            mine = {h["doc_id"] for h in hits if h["doc_id"].startswith(f"r{run}-")}
            assert mine <= live[who], (who, mine, live)
            assert all(f"({who} " in h["text"] for h in hits if h["doc_id"].startswith(f"r{run}-"))
        listed = client.get("/v1/documents", params={"status": "indexed", "limit": 1000}, headers=auth(key)).json()
        assert {d["doc_id"] for d in listed["documents"] if d["doc_id"].startswith(f"r{run}-")} == live[who]
