"""BEIR golden sets from files: a qrels TSV (``query-id<TAB>corpus-id<TAB>score``, a header line) and a
queries JSONL (``{"_id": …, "text": …}`` per line).

The corpus ids of the qrels are doclake document ids. Queries the qrels do not judge are left out
(BEIR ships one queries file for every split). Anything malformed is refused with the file and the
line, never half-loaded.
"""

from __future__ import annotations

import json
from pathlib import Path

from pipelines.contracts.evals import EvalSet
from pipelines.errors import InvalidEvalSet

__all__ = ["load_beir", "parse_qrels", "parse_queries"]


def _read(path: Path, what: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError as e:
        raise InvalidEvalSet(f"{what} file {path} does not exist") from e
    except (OSError, UnicodeDecodeError) as e:
        raise InvalidEvalSet(f"cannot read {what} file {path}: {e}") from e


def _is_int(text: str) -> bool:
    try:
        int(text)
    except ValueError:
        return False
    return True


def parse_qrels(text: str, *, source: str = "qrels") -> dict[str, dict[str, int]]:
    """Query id -> document id -> relevance from BEIR qrels TSV text.

    Raises:
        InvalidEvalSet: a line without exactly three tab-separated fields, an empty id, a score that is
            not an integer, or the same (query, document) judged twice.
    """
    qrels: dict[str, dict[str, int]] = {}
    first = True
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        fields = line.rstrip("\r").split("\t")
        if first:
            first = False
            if len(fields) == 3 and not _is_int(fields[2].strip()):
                continue  # the header (query-id, corpus-id, score)
        if len(fields) != 3:
            raise InvalidEvalSet(
                f"{source} line {number}: expected 3 tab-separated fields (query-id, corpus-id, score),"
                f" got {len(fields)}"
            )
        query_id, doc_id, score = (f.strip() for f in fields)
        if not query_id or not doc_id:
            raise InvalidEvalSet(f"{source} line {number}: empty query-id or corpus-id")
        if not _is_int(score):
            raise InvalidEvalSet(f"{source} line {number}: score {score!r} is not an integer")
        judged = qrels.setdefault(query_id, {})
        if doc_id in judged:
            raise InvalidEvalSet(f"{source} line {number}: query {query_id} judges document {doc_id} twice")
        judged[doc_id] = int(score)
    return qrels


def parse_queries(text: str, *, source: str = "queries") -> dict[str, str]:
    """Query id -> text from BEIR queries JSONL text.

    Raises:
        InvalidEvalSet: a line that is not a JSON object with a non-empty ``_id`` and a string ``text``,
            or an id given twice.
    """
    queries: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise InvalidEvalSet(f"{source} line {number}: not JSON ({e.msg})") from e
        if not isinstance(row, dict):
            raise InvalidEvalSet(f"{source} line {number}: expected a JSON object with _id and text")
        query_id, query = row.get("_id"), row.get("text")
        if not isinstance(query_id, str | int) or isinstance(query_id, bool) or not str(query_id).strip():
            raise InvalidEvalSet(f"{source} line {number}: missing or empty _id")
        if not isinstance(query, str):
            raise InvalidEvalSet(f"{source} line {number}: missing text (a string)")
        key = str(query_id).strip()
        if key in queries:
            raise InvalidEvalSet(f"{source} line {number}: query id {key} appears twice")
        queries[key] = query
    return queries


def load_beir(qrels: Path, queries: Path, *, name: str | None = None) -> EvalSet:
    """The eval set of a BEIR qrels TSV and queries JSONL, named ``name`` (default: the qrels file's stem).

    Raises:
        InvalidEvalSet: an unreadable or malformed file, qrels judging a query the queries file does not
            have, no judgement at all, or an invalid name.
    """
    judged = parse_qrels(_read(qrels, "qrels"), source=str(qrels))
    texts = parse_queries(_read(queries, "queries"), source=str(queries))
    if not judged:
        raise InvalidEvalSet(f"{qrels} holds no judgements: nothing to evaluate")
    return EvalSet.of(qrels.stem if name is None else name, texts, judged)
