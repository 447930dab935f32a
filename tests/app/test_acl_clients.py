"""The Python clients (sync and async), the LangChain retriever and the CLI pass acls and principals."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from app import cli as cli_module
from app.cli import cli
from app.client import AsyncDoclakeClient, DoclakeClient, DoclakeHTTPError
from app.langchain_retriever import DoclakeRetriever
from tests.steps import apply_updates

KEYS = b"# Vault\n\nThe vault master key is rotated every ninety days by the security team."
LUNCH = b"# Lunch\n\nThe team lunch is on Thursday at the harbour cafe."
QUERY = "vault master key rotation lunch harbour cafe"


@pytest.fixture()
def api(inline_api: TestClient) -> DoclakeClient:
    client = DoclakeClient(http=inline_api)
    client.upload(KEYS, filename="vault.md", doc_id="vault", acl=["group:sec"])
    client.upload(LUNCH, filename="lunch.md", doc_id="lunch")
    return client


def _doc_ids(response: object) -> set[str]:
    return {h.doc_id for h in response.results}  # type: ignore[attr-defined]


def test_the_sync_client_uploads_acls_and_searches_as_principals(api: DoclakeClient, inline_api: TestClient) -> None:
    assert api.get("vault").acl == ["group:sec"]
    assert _doc_ids(api.search(QUERY)) == {"lunch"}
    assert _doc_ids(api.search(QUERY, principals=["group:sec"])) == {"lunch", "vault"}
    assert _doc_ids(api.search(QUERY, principals=["group:sec"], mode="keyword")) == {"lunch", "vault"}
    context = api.rag_context("how often is the vault key rotated?", principals=["group:sec"])
    assert "ninety days" in context.context
    assert "ninety days" not in api.rag_context("how often is the vault key rotated?").context

    batch = api.upload_many(
        [("a.md", b"# A\n\nAlpha notes."), ("b.md", b"# B\n\nBeta notes.")],
        doc_ids=["a", "b"],
        acl=["group:all"],
        acls=[["user:ana"], None],
    )
    assert batch.accepted == 2
    assert (api.get("a").acl, api.get("b").acl) == (["user:ana"], ["group:all"])

    patched = api.set_acl("lunch", ["group:staff"])
    assert patched.acl == ["group:staff"]
    apply_updates(inline_api.app.state.runtime)  # type: ignore[attr-defined]
    assert _doc_ids(api.search(QUERY)) == set()
    with pytest.raises(DoclakeHTTPError) as info:
        api.upload(b"x", filename="x.txt", acl=["*"])
    assert info.value.status == 422


def test_the_async_client_passes_principals(api: DoclakeClient, inline_api: TestClient) -> None:
    async def run() -> tuple[set[str], set[str], str]:
        transport = httpx.ASGITransport(app=inline_api.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://doclake") as http:
            client = AsyncDoclakeClient(http=http)
            anonymous = _doc_ids(await client.search(QUERY))
            member = _doc_ids(await client.search(QUERY, principals=["group:sec"]))
            context = await client.rag_context("vault key rotation", principals=["group:sec"])
            return anonymous, member, context.context

    anonymous, member, context = asyncio.run(run())
    assert anonymous == {"lunch"} and member == {"lunch", "vault"} and "ninety days" in context


def test_the_langchain_retriever_passes_principals(api: DoclakeClient) -> None:
    def found(**kw: object) -> set[str]:
        retriever = DoclakeRetriever(client=api, top_k=5, **kw)  # type: ignore[arg-type]
        return {d.metadata.get("doc_id") for d in retriever.invoke("vault master key rotation")}

    assert found() == {"lunch"}
    assert found(principals=["group:sec"]) == {"lunch", "vault"}
    context = DoclakeRetriever(client=api, mode="context", principals=["group:sec"]).invoke("vault key")
    assert any("ninety days" in d.page_content for d in context)


def test_the_cli_searches_as_repeated_principals_and_ingests_with_an_acl(
    api: DoclakeClient, inline_api: TestClient, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(cli_module, "_client", lambda: DoclakeClient(http=inline_api))
    runner = CliRunner()

    def cli_docs(*args: str) -> set[str]:
        result = runner.invoke(cli, ["search", QUERY, "--json", *args])
        assert result.exit_code == 0, result.output
        return {h["doc_id"] for h in json.loads(result.output)["results"]}

    assert cli_docs() == {"lunch"}
    assert cli_docs("--principal", "user:zed", "--principal", "group:sec") == {"lunch", "vault"}
    (tmp_path / "memo.md").write_bytes(b"# Memo\n\nThe vault audit is scheduled for May.")
    result = runner.invoke(cli, ["ingest", str(tmp_path), "--acl", "group:audit", "--acl", "user:ana"])
    assert result.exit_code == 0, result.output
    memo = next(d for d in api.list().documents if d.filename == "memo.md")
    assert memo.acl == ["group:audit", "user:ana"]
