"""What a served run expects and returns: GET /schema, the OpenAPI request body."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from plait.data.processors import PairTarget
from plait.errors import ConfigError
from plait.serve.options import ServeOptions

if TYPE_CHECKING:
    from plait.predictor import Predictor

MEDIA = ("image", "audio", "video")
# JSON value of each input type in a request row; every input may be null or left out.
_FILE = 'an inline file {"base64": "..."} (or a data: URL), a multipart upload, or a path under --allow-dir'
_ACCEPTS = {
    "image": _FILE,
    "audio": _FILE,
    "video": _FILE + " (its sound track too, when the model reads it)",
    "text": "a string",
    "numeric": "a number",
    "category": "a string or a number (values unseen in training fall in the unknown bucket)",
    "id": "a string or a number, copied to the prediction",
}
_EXAMPLE = {
    "image": {"base64": "<base64 of a PNG or JPEG file>"},
    "audio": {"base64": "<base64 of a WAV, FLAC, OGG or MP3 file>"},
    "video": {"base64": "<base64 of an MP4, WebM, MKV, AVI or MOV file>"},
    "text": "some text",
    "numeric": 1.0,
    "category": "a value",
    "id": "row-1",
}


@dataclass(frozen=True)
class OutputSpec:
    name: str
    type: str  # category, binary, multilabel, numeric, text
    classes: list[str]  # empty for numeric and text targets
    fields: list[str]  # the prediction fields it fills, in order


@dataclass(frozen=True)
class ServeSpec:
    inputs: dict[str, str]  # column → image, audio, video, text, numeric or category
    ids: list[str]  # columns copied from the request to the prediction
    outputs: list[OutputSpec]
    run: str  # the run folder's name (not its path: the server's layout stays private)

    @classmethod
    def from_predictor(cls, predictor: Predictor) -> ServeSpec:
        outputs = []
        for name, proc in predictor.targets.items():
            if isinstance(proc, PairTarget):  # embeddings: not a prediction
                continue
            classes = [str(c) for c in getattr(proc, "classes_", [])]
            if proc.kind in ("text", "boxes"):  # boxes: one JSON list of [x0, y0, x1, y1, label, score]
                probs = []
            elif proc.kind == "box":
                probs = [f"{name}_score"]
            else:
                probs = [f"{name}_prob_{c}" for c in classes]
            outputs.append(OutputSpec(name, proc.kind, classes, [name, *probs]))
        if not outputs:
            raise ConfigError("this is a retrieval run: plait serve serves predictions; use plait search")
        # A video's sound track is read from the clip: not a field of its own.
        inputs = {c.name: str(c.type) for c in predictor.config.inputs if c.sound_of is None}
        ids = [c for c in predictor.config.id_columns if c not in inputs]
        run = predictor.run_dir.name if predictor.run_dir else "model"
        return cls(inputs, ids, outputs, run)

    def field_type(self, name: str) -> str | None:
        """image, audio, text, numeric, category, id; None for an unknown field."""
        return self.inputs.get(name) or ("id" if name in self.ids else None)

    @property
    def fields(self) -> list[str]:
        return [*self.ids, *self.inputs]

    def example(self) -> dict[str, Any]:
        return {"rows": [{name: _EXAMPLE[self.field_type(name) or "id"] for name in self.fields}]}

    def describe(self, options: ServeOptions) -> dict[str, Any]:
        """The body of GET /schema."""
        return {
            "run": self.run,
            "inputs": [
                {"name": n, "type": t, "required": False, "accepts": _ACCEPTS[t]}
                for n, t in self.inputs.items()
            ],
            "ids": self.ids,
            "outputs": [
                {"name": o.name, "type": o.type, "classes": o.classes, "fields": o.fields}
                for o in self.outputs
            ],
            "missing": "an input left out, null or empty is a missing modality for that row; "
            "a row needs at least one input",
            "limits": {
                "max_rows": options.max_rows,
                "max_upload_mb": options.max_upload_mb,
                "paths": "refused" if options.allow_dir is None else "read from the allowed folder only",
            },
            "example": self.example(),
        }

    def openapi_body(self) -> dict[str, Any]:
        """The /predict request body for the OpenAPI page (the endpoint parses it itself)."""
        media = {
            "anyOf": [
                {
                    "type": "object",
                    "properties": {"base64": {"type": "string"}},
                    "required": ["base64"],
                    "additionalProperties": False,
                },
                {"type": "string", "description": "a data: URL, or a path under --allow-dir"},
                {"type": "null"},
            ]
        }
        kinds = {
            "image": media,
            "audio": media,
            "video": media,
            "text": {"type": ["string", "null"]},
            "numeric": {"type": ["number", "null"]},
            "category": {"type": ["string", "number", "boolean", "null"]},
            "id": {"type": ["string", "number", "null"]},
        }
        row = {
            "type": "object",
            "properties": {n: kinds[self.field_type(n) or "id"] for n in self.fields},
            "additionalProperties": False,
        }
        json_body = {
            "type": "object",
            "properties": {"rows": {"type": "array", "items": row}},
            "required": ["rows"],
        }
        form = {
            "type": "object",
            "description": "One row: a field per column (COL); several: rows[I].COL. "
            "Image and audio fields are file uploads (or paths under --allow-dir).",
            "properties": {
                n: {"type": "string", "format": "binary"}
                if self.field_type(n) in MEDIA
                else {"type": "string"}
                for n in self.fields
            },
        }
        return {
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {"schema": json_body, "example": self.example()},
                    "multipart/form-data": {"schema": form},
                },
            }
        }
