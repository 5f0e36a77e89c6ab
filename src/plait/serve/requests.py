"""A /predict request, JSON or multipart, → a validated DataFrame of rows.

JSON: `{"rows": [{column: value, ...}, ...]}`. Multipart: one row as a field per
column (`image=@cat.png`, `caption=...`), several as `rows[I].COLUMN`. A column left
out, null or empty is a missing modality for that row (the model masks it, as for an
empty cell in a table); a row needs at least one input. Every problem is reported at
once, each with the field it concerns (`rows[2].image`).
"""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import asdict, dataclass
from typing import Any

import pandas as pd
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request

from plait.serve.media import KINDS, CellError, MediaFiles, decode_base64, from_data_url
from plait.serve.schema import ServeSpec

_FORM_FIELD = re.compile(r"rows\[(\d+)\]\.(.+)")
_MAX_PROBLEMS = 20  # reported per request; the rest are counted
_WANT = {
    "text": "text (a string) or null",
    "numeric": "a number or null",
    "category": "a string, a number or null",
    "id": "a string, a number or null",
}
_BODY = '{"rows": [{column: value, ...}, ...]}'
# How the processors (and plait.data.paths) begin an error about one cell.
_CELL_ERROR = re.compile(r"column '(?P<column>[^']+)', row (?P<row>\d+): (?P<problem>.+)", re.DOTALL)


@dataclass(frozen=True)
class Problem:
    field: str  # "body", "rows", "rows[0].image"
    problem: str


class BadRequest(Exception):
    """A request the server refuses: an HTTP status and what was wrong, per field."""

    def __init__(self, status: int, problems: list[Problem]) -> None:
        if len(problems) > _MAX_PROBLEMS:
            more = Problem("rows", f"... and {len(problems) - _MAX_PROBLEMS} more problem(s)")
            problems = [*problems[:_MAX_PROBLEMS], more]
        super().__init__("; ".join(f"{p.field}: {p.problem}" for p in problems))
        self.status = status
        self.problems = problems

    @classmethod
    def one(cls, status: int, field: str, problem: str) -> BadRequest:
        return cls(status, [Problem(field, problem)])

    def body(self) -> dict[str, Any]:
        return {"detail": [asdict(p) for p in self.problems]}


@dataclass(frozen=True)
class Upload:
    data: bytes
    filename: str


async def read_rows(request: Request, max_rows: int) -> tuple[list[dict[str, Any]], bool]:
    """The request's rows, and whether they came from a form (values are strings or uploads)."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "application/json" or kind.endswith("+json"):
        return _json_rows(await request.body(), max_rows), False
    if kind == "multipart/form-data":
        return await _form_rows(request, max_rows), True
    hint = " (curl -d sends that: add -H 'content-type: application/json')" if "urlencoded" in kind else ""
    raise BadRequest.one(
        415,
        "body",
        f"content type must be application/json or multipart/form-data, got {kind or 'none'!r}{hint}",
    )


def _json_rows(raw: bytes, max_rows: int) -> list[dict[str, Any]]:
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as err:
        raise BadRequest.one(400, "body", f"not valid JSON ({' '.join(str(err).split())[:120]})") from None
    if not isinstance(body, dict):
        raise BadRequest.one(422, "body", f"expected an object {_BODY}, got {_json_type(body)}")
    problems = [Problem(k, f"unknown field; the body is {_BODY}") for k in body if k != "rows"]
    rows = body.get("rows")
    if "rows" not in body:
        problems.append(Problem("rows", f"missing; the body is {_BODY}"))
    elif not isinstance(rows, list):
        problems.append(Problem("rows", f"expected a list of row objects, got {_json_type(rows)}"))
    elif not rows:
        problems.append(Problem("rows", "empty; give at least one row"))
    elif len(rows) > max_rows:
        problems.append(Problem("rows", f"{len(rows)} rows, over the limit of {max_rows}; split the request"))
    else:
        for i, row in enumerate(rows):
            if not isinstance(row, dict):
                problems.append(
                    Problem(f"rows[{i}]", f"expected an object {{column: value}}, got {_json_type(row)}")
                )
    if problems:
        raise BadRequest(422, problems)
    return rows  # type: ignore[return-value]


async def _form_rows(request: Request, max_rows: int) -> list[dict[str, Any]]:
    rows: dict[int, dict[str, Any]] = {}
    problems = []
    try:
        async with request.form(max_files=max_rows * 4, max_fields=max_rows * 16) as form:
            for key, value in form.multi_items():
                match = _FORM_FIELD.fullmatch(key)
                index, column = (int(match[1]), match[2]) if match else (0, key)
                where = f"rows[{index}].{column}"
                if index >= max_rows:
                    problems.append(Problem(key, f"row {index} is over the limit of {max_rows} rows"))
                elif column in rows.setdefault(index, {}):
                    problems.append(Problem(where, "given twice"))
                elif isinstance(value, UploadFile):
                    data = await value.read()
                    rows[index][column] = (
                        None if not (data or value.filename) else Upload(data, value.filename or "")
                    )
                else:
                    rows[index][column] = value
    except HTTPException as err:  # malformed multipart, too many parts
        raise BadRequest.one(400, "body", f"not a valid form ({err.detail})") from None
    if not rows and not problems:
        problems.append(Problem("body", "empty form; give a field per column (COLUMN or rows[I].COLUMN)"))
    if problems:
        raise BadRequest(422, problems)
    return [rows.get(i, {}) for i in range(max(rows) + 1)]


def to_frame(rows: list[dict[str, Any]], spec: ServeSpec, media: MediaFiles, from_form: bool) -> pd.DataFrame:
    """Rows → one DataFrame with every input and id column (None where missing); media
    cells become paths of checked files in `media`'s folder."""
    problems: list[Problem] = []
    records = []
    for i, row in enumerate(rows):
        record: dict[str, Any] = dict.fromkeys(spec.fields)
        before = len(problems)
        for name, value in row.items():
            kind = spec.field_type(name)
            if kind is None:
                problems.append(Problem(f"rows[{i}].{name}", _unknown(name, spec)))
                continue
            try:
                record[name] = _cell(value, kind, media, from_form)
            except CellError as err:
                problems.append(Problem(f"rows[{i}].{name}", str(err)))
        if len(problems) == before and all(record[n] is None for n in spec.inputs):
            problems.append(
                Problem(f"rows[{i}]", f"no inputs; give at least one of {', '.join(spec.inputs)}")
            )
        records.append(record)
    if problems:
        raise BadRequest(422, problems)
    return pd.DataFrame.from_records(records, columns=spec.fields)


def _cell(value: Any, kind: str, media: MediaFiles, from_form: bool) -> Any:
    """One request value → a table cell (None: missing). Raises CellError."""
    if value is None:
        return None
    if kind in KINDS:
        return _media(value, kind, media)
    if isinstance(value, Upload):
        raise CellError(f"expected {_WANT[kind]}, got a file upload")
    if isinstance(value, str) and not value.strip():
        return None
    if kind == "numeric":
        if from_form and isinstance(value, str):  # form fields are always strings
            try:
                return float(value)
            except ValueError:
                raise CellError(f"expected a number, got {value[:40]!r}") from None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise CellError(f"expected {_WANT[kind]}, got {_json_type(value)}")
        try:
            return float(value)
        except OverflowError:
            raise CellError("the number is out of range") from None
    if kind == "text" and not isinstance(value, str):
        raise CellError(f"expected {_WANT[kind]}, got {_json_type(value)}")
    if isinstance(value, (dict, list)):
        raise CellError(f"expected {_WANT[kind]}, got {_json_type(value)}")
    return value


def _media(value: Any, kind: str, media: MediaFiles) -> str | None:
    if isinstance(value, Upload):
        data = value.data
    elif isinstance(value, dict):
        if set(value) != {"base64"} or not isinstance(value["base64"], str):
            keys = ", ".join(map(repr, value)) or "none"
            raise CellError(f'expected {{"base64": "<the file as base64>"}}, got an object with keys {keys}')
        data = decode_base64(value["base64"])
    elif isinstance(value, str):
        if not value.strip():
            return None
        data = from_data_url(value) if value.startswith("data:") else media.read_path(value.strip())
    else:
        raise CellError(
            f'expected {{"base64": "..."}}, a data: URL, an upload, a path or null, got {_json_type(value)}'
        )
    return media.add(data, kind)


def model_problem(message: str) -> Problem:
    """An error the model raised on a request's rows: the field of the cell it names (row
    N of the request's table is `rows[N-1]`), else the rows as a whole."""
    match = _CELL_ERROR.fullmatch(message)
    if match is None:
        return Problem("rows", message)
    return Problem(f"rows[{int(match['row']) - 1}].{match['column']}", match["problem"])


def _unknown(name: str, spec: ServeSpec) -> str:
    close = difflib.get_close_matches(name, spec.fields, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return f"unknown field; {hint}this model takes {', '.join(spec.fields)}"


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, (int, float)):
        return f"a number ({value!r})"
    if isinstance(value, str):
        return f"a string ({value[:40]!r})"
    return "a list" if isinstance(value, list) else "an object"
