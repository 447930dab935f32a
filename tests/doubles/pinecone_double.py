"""A TEST DOUBLE of Pinecone's data-plane REST API, for the one service that cannot run here.

Pinecone is a cloud service with no local server, so the adapter in pipelines/vectorstore/pinecone.py
is exercised against this in-memory imitation of the endpoints it uses (upsert, query, delete, list,
fetch, describe_index_stats). It enforces the documented request limits (1000 vectors or 2 MB per
upsert, 40 KB metadata per record, ids of at most 512 characters, 1000 ids per delete) so that the
adapter's batching is really tested, and it can be told to answer 429 to test retries. It is not
Pinecone: scores are exact cosine over everything, and filters implement $and, $or, $eq, $ne, $in, $nin
and $exists (with Pinecone's list-field semantics), nothing else.
"""

from __future__ import annotations

import json
import math
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

MAX_UPSERT_VECTORS = 1000
MAX_REQUEST_BYTES = 2 * 1024 * 1024
MAX_METADATA_BYTES = 40 * 1024
MAX_ID_LENGTH = 512


class PineconeDouble:
    def __init__(self) -> None:
        self.namespaces: dict[str, dict[str, dict[str, Any]]] = {}
        self.requests: list[tuple[str, int]] = []  # (path, body bytes) of every request
        self.fail_next: int = 0  # answer this many next requests with 429
        self.require_key: str | None = None  # when set, any other Api-Key gets 401
        self.lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> PineconeDouble:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        double = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_: Any) -> None:
                pass

            def _reply(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _handle(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                url = urlparse(self.path)
                with double.lock:
                    double.requests.append((url.path, len(raw)))
                    if double.fail_next > 0:
                        double.fail_next -= 1
                        self._reply(429, {"code": 8, "message": "Too many requests (double)"})
                        return
                key = self.headers.get("Api-Key")
                if not key or (double.require_key is not None and key != double.require_key):
                    self._reply(401, {"code": 16, "message": "missing Api-Key"})
                    return
                body = json.loads(raw) if raw else {}
                query = {k: v if len(v) > 1 else v[0] for k, v in parse_qs(url.query).items()}
                try:
                    status, answer = double.route(method, url.path, body, query, len(raw))
                except ValueError as e:
                    status, answer = 400, {"code": 3, "message": str(e)}
                self._reply(status, answer)

            def do_GET(self) -> None:
                self._handle("GET")

            def do_POST(self) -> None:
                self._handle("POST")

        return Handler

    def route(
        self, method: str, path: str, body: dict[str, Any], query: dict[str, Any], size: int
    ) -> tuple[int, dict[str, Any]]:
        with self.lock:
            if path == "/vectors/upsert":
                return self._upsert(body, size)
            if path == "/query":
                return self._query(body)
            if path == "/vectors/delete":
                return self._delete(body)
            if path == "/vectors/list":
                return self._list(query)
            if path == "/vectors/fetch":
                ids = query.get("ids", [])
                ids = [ids] if isinstance(ids, str) else ids
                ns = self.namespaces.get(query.get("namespace", ""), {})
                return 200, {"vectors": {i: ns[i] for i in ids if i in ns}, "namespace": query.get("namespace", "")}
            if path == "/describe_index_stats":
                counts = {ns: {"vectorCount": len(v)} for ns, v in self.namespaces.items() if v}
                total = sum(c["vectorCount"] for c in counts.values())
                return 200, {"namespaces": counts, "dimension": 0, "indexFullness": 0.0, "totalVectorCount": total}
        return 404, {"code": 5, "message": f"no route {method} {path}"}

    def _upsert(self, body: dict[str, Any], size: int) -> tuple[int, dict[str, Any]]:
        vectors = body.get("vectors", [])
        if len(vectors) > MAX_UPSERT_VECTORS:
            raise ValueError(f"upsert of {len(vectors)} vectors exceeds {MAX_UPSERT_VECTORS}")
        if size > MAX_REQUEST_BYTES:
            raise ValueError(f"request of {size} bytes exceeds {MAX_REQUEST_BYTES}")
        ns = self.namespaces.setdefault(body.get("namespace", ""), {})
        for v in vectors:
            if len(v["id"]) > MAX_ID_LENGTH:
                raise ValueError("id too long")
            if len(json.dumps(v.get("metadata", {}))) > MAX_METADATA_BYTES:
                raise ValueError("metadata too large")
            if any(value is None for value in v.get("metadata", {}).values()):
                raise ValueError("metadata values cannot be null")
            lists = [value for value in v.get("metadata", {}).values() if isinstance(value, list)]
            if any(not all(isinstance(item, str) for item in value) for value in lists):
                raise ValueError("metadata lists must hold strings only")
            ns[v["id"]] = {"id": v["id"], "values": v["values"], "metadata": v.get("metadata", {})}
        return 200, {"upsertedCount": len(vectors)}

    @staticmethod
    def _matches(metadata: dict[str, Any], flt: dict[str, Any] | None) -> bool:
        """Pinecone's filter language as documented: ``$and`` / ``$or`` of per-field conditions ``$eq``, ``$ne``,
        ``$in``, ``$nin``, ``$exists`` (a bare value is ``$eq``). On a list field (Pinecone stores only lists of
        strings) a condition holds when one of its values satisfies it: ``$in`` is "any in common"."""
        if not flt:
            return True
        for key, cond in flt.items():
            if key == "$and":
                if not all(PineconeDouble._matches(metadata, c) for c in cond):
                    return False
                continue
            if key == "$or":
                if not any(PineconeDouble._matches(metadata, c) for c in cond):
                    return False
                continue
            ops = cond if isinstance(cond, dict) else {"$eq": cond}
            for op, expected in ops.items():
                if not PineconeDouble._holds(metadata, key, op, expected):
                    return False
        return True

    @staticmethod
    def _holds(metadata: dict[str, Any], key: str, op: str, expected: Any) -> bool:
        if op == "$exists":
            return (key in metadata) is bool(expected)
        if key not in metadata:
            return op in ("$ne", "$nin")
        stored = metadata[key]
        values = stored if isinstance(stored, list) else [stored]

        def same(a: Any, b: Any) -> bool:
            return bool(a == b and type(a) is type(b))

        if op == "$eq":
            return any(same(v, expected) for v in values)
        if op == "$ne":
            return not any(same(v, expected) for v in values)
        if op == "$in":
            return any(same(v, e) for v in values for e in expected)
        if op == "$nin":
            return not any(same(v, e) for v in values for e in expected)
        raise ValueError(f"filter operator {op} is not implemented by the double")

    def _query(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        q = body["vector"]
        qn = math.sqrt(sum(x * x for x in q)) or 1.0
        ns = self.namespaces.get(body.get("namespace", ""), {})
        scored = []
        for v in ns.values():
            if not self._matches(v["metadata"], body.get("filter")):
                continue
            vn = math.sqrt(sum(x * x for x in v["values"])) or 1.0
            scored.append((sum(a * b for a, b in zip(q, v["values"], strict=True)) / (qn * vn), v))
        scored.sort(key=lambda s: -s[0])
        matches = [
            {
                "id": v["id"],
                "score": s,
                "values": [],
                **({"metadata": v["metadata"]} if body.get("includeMetadata") else {}),
            }
            for s, v in scored[: body.get("topK", 10)]
        ]
        return 200, {"matches": matches, "namespace": body.get("namespace", ""), "usage": {"readUnits": 1}}

    def _delete(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        ns = self.namespaces.get(body.get("namespace", ""), {})
        if body.get("deleteAll"):
            ns.clear()
        ids = body.get("ids") or []
        if len(ids) > 1000:
            raise ValueError("delete of more than 1000 ids")
        for i in ids:
            ns.pop(i, None)
        return 200, {}

    def _list(self, query: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        ns = self.namespaces.get(query.get("namespace", ""), {})
        prefix = query.get("prefix", "")
        limit = int(query.get("limit", 100))
        ids = sorted(i for i in ns if i.startswith(prefix))
        start = int(query.get("paginationToken", 0))
        page = ids[start : start + limit]
        answer: dict[str, Any] = {"vectors": [{"id": i} for i in page], "namespace": query.get("namespace", "")}
        if start + limit < len(ids):
            answer["pagination"] = {"next": str(start + limit)}
        answer["usage"] = {"readUnits": 1}
        return 200, answer
