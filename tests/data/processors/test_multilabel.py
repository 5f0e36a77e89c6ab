import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from plait.data.processors import TARGET_PROCESSORS, MultilabelTarget
from plait.data.table import infer_target_type, read_table
from plait.errors import ConfigError, DataError


def test_cells_in_every_format():
    cells = pd.Series(
        [
            "b|a",
            " a | c |a|",  # stripped, empties dropped, repeats collapsed
            ["c"],  # a JSONL list
            ("a", "b"),
            np.array(["10", "2"]),  # a Parquet list
            "[]",  # a JSON list in a CSV: the empty set
            '["2", "b"]',
            [],
            [3.0],  # 3.0 and 3 are the same label
        ],
        dtype=object,
    )
    proc = MultilabelTarget().fit(cells, "tags")
    assert proc.classes_ == ["2", "3", "10", "a", "b", "c"]  # natural order, as for categories
    assert proc.thresholds_ == [0.5] * 6
    y = proc.transform(cells, "tags")
    assert y.dtype == torch.float32 and y.shape == (9, 6)
    assert y.tolist() == [
        [0, 0, 0, 1, 1, 0],
        [0, 0, 0, 1, 0, 1],
        [0, 0, 0, 0, 0, 1],
        [0, 0, 0, 1, 1, 0],
        [1, 0, 1, 0, 0, 0],
        [0, 0, 0, 0, 0, 0],
        [1, 0, 0, 0, 1, 0],
        [0, 0, 0, 0, 0, 0],
        [0, 1, 0, 0, 0, 0],
    ]
    # Share of rows with each label: "2" 2/9, "3" 1/9, "10" 1/9, "a" 3/9, "b" 3/9, "c" 2/9.
    assert proc.frequencies_ == pytest.approx([2 / 9, 1 / 9, 1 / 9, 3 / 9, 3 / 9, 2 / 9])
    assert proc.num_classes == 6
    assert proc.head_kwargs() == {"num_labels": 6, "label_frequencies": proc.frequencies_}


def test_delimiter_option_and_frequencies_from_training_rows():
    proc = MultilabelTarget.create({"delimiter": ";"}, "tags").fit(pd.Series(["a;b", "b", "c;a|x"]), "tags")
    assert proc.classes_ == ["a", "a|x", "b", "c"]
    proc.fit_frequencies(pd.Series(["a;b", "b", "b", "a;c"]), "tags")  # only the training rows
    assert proc.frequencies_ == [0.5, 0.0, 0.75, 0.25]
    assert proc.classes_ == ["a", "a|x", "b", "c"]  # classes stay those of every labelled row


def test_unknown_option_and_bad_delimiter():
    with pytest.raises(
        ConfigError, match="column 'tags': unknown multilabel preprocessing option.*sep.*delimiter"
    ):
        TARGET_PROCESSORS["multilabel"].create({"sep": ";"}, "tags")
    with pytest.raises(ConfigError, match="delimiter must be a non-empty string, got ''"):
        MultilabelTarget(delimiter="").fit(pd.Series(["a", "b"]), "tags")


def test_decode_uses_per_label_thresholds():
    proc = MultilabelTarget().fit(pd.Series(["a|b", "c"]))
    proc.thresholds_ = [0.5, 0.2, 0.9]
    probs = torch.tensor([[0.6, 0.3, 0.95], [0.4, 0.1, 0.5], [0.5, 0.2, 0.9]])
    assert proc.decode(probs) == ["a|b|c", "", "a|b|c"]  # a probability at the threshold counts


def test_state_round_trips_as_json():
    proc = MultilabelTarget(delimiter=",").fit(pd.Series(["x,y", "y", "[]"]))
    proc.thresholds_ = [0.3, 0.7]
    state = json.loads(json.dumps(proc.state()))
    assert state["fitted"] == {
        "classes_": ["x", "y"],
        "frequencies_": [1 / 3, 2 / 3],
        "thresholds_": [0.3, 0.7],
    }
    again = TARGET_PROCESSORS[state["kind"]].from_state(state)
    assert again.delimiter == ","
    assert torch.equal(again.transform(pd.Series(["y,x", "[]"])), proc.transform(pd.Series(["y,x", "[]"])))
    assert again.decode(torch.tensor([[0.4, 0.6]])) == ["x"]


def test_missing_cells_are_errors_and_empty_lists_are_not():
    with pytest.raises(DataError, match=r"label column 'tags' is empty in 2 of 4 rows \(rows 2, 4\)"):
        MultilabelTarget().fit(pd.Series(["a|b", float("nan"), "[]", " "], dtype=object), "tags")
    proc = MultilabelTarget().fit(pd.Series(["a", "b", "[]"], dtype=object), "tags")
    with pytest.raises(DataError, match=r"is empty in 1 of 2 rows \(rows 2\)"):
        proc.transform(pd.Series(["a", None], dtype=object), "tags")


def test_unseen_labels_name_the_rows_and_labels():
    proc = MultilabelTarget().fit(pd.Series(["a|b", "b"]), "tags")
    with pytest.raises(
        DataError,
        match=r"label column 'tags' has labels not seen in training in rows 2, 3: 'x', 'y'; known: 'a', 'b'",
    ):
        proc.transform(pd.Series(["a", "a|x", "y|b"]), "tags")


def test_too_few_labels_and_bad_json():
    with pytest.raises(DataError, match=r"holds 1 distinct label\(s\) \('a'\).*--type tags=binary"):
        MultilabelTarget().fit(pd.Series(["a", "[]", "a|a"]), "tags")
    with pytest.raises(
        DataError, match=r"label column 'tags', row 2: '\[a, b' starts with '\[' but is not a JSON"
    ):
        MultilabelTarget().fit(pd.Series(["a", "[a, b"]), "tags")


def test_list_cells_round_trip_through_parquet_and_jsonl(tmp_path: Path):
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0], "tags": [["b", "a"], [], ["c"]]})
    for name, write in (("t.parquet", frame.to_parquet), ("t.jsonl", None)):
        path = tmp_path / name
        if write is None:
            frame.to_json(path, orient="records", lines=True)
        else:
            write(path)
        cells = read_table(path).frame["tags"]
        assert infer_target_type(cells) == "multilabel"  # list cells: no --type needed
        proc = MultilabelTarget().fit(cells, "tags")
        assert proc.classes_ == ["a", "b", "c"]
        assert proc.transform(cells, "tags").tolist() == [[1, 1, 0], [0, 0, 0], [0, 0, 1]]


def test_delimited_strings_are_not_guessed():
    assert infer_target_type(pd.Series(["a|b", "b", "a", "a|b"])) == "category"
