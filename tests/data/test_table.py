from pathlib import Path

import pandas as pd
import pytest

from plait.data.table import infer_input_type, infer_target_type, infer_types, read_table
from plait.errors import DataError
from tests.conftest import make_table


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".jsonl"])
def test_reads_every_format_with_base_dir(tmp_path: Path, suffix: str):
    frame = make_table(tmp_path, rows=6)
    path = tmp_path / f"t{suffix}"
    {
        ".csv": lambda: frame.to_csv(path, index=False),
        ".parquet": lambda: frame.to_parquet(path),
        ".jsonl": lambda: frame.to_json(path, orient="records", lines=True),
    }[suffix]()
    table = read_table(path)
    assert list(table.frame.columns) == list(frame.columns)
    assert len(table.frame) == 6
    assert table.base_dir == tmp_path.resolve()
    assert table.source == path.name


def test_dataframe_input_resolves_against_given_folder(tmp_path: Path):
    table = read_table(pd.DataFrame({"a": [1, 2]}), base_dir=tmp_path)
    assert table.base_dir == tmp_path.resolve()


def test_missing_and_empty_tables(tmp_path: Path):
    with pytest.raises(DataError, match="table file not found"):
        read_table(tmp_path / "nope.csv")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(DataError, match="empty"):
        read_table(tmp_path / "empty.csv")
    (tmp_path / "header.csv").write_text("a,b\n")
    with pytest.raises(DataError, match="empty .no rows."):
        read_table(tmp_path / "header.csv")


def test_unreadable_table(tmp_path: Path):
    path = tmp_path / "bad.parquet"
    path.write_bytes(b"not parquet at all")
    with pytest.raises(DataError, match="cannot read table"):
        read_table(path)


def test_infers_every_type(tmp_path: Path):
    frame = make_table(tmp_path, rows=60)
    frame["review"] = [f"review {i} says {'good ' * (i % 4)}things about item {i}" for i in range(60)]
    frame["split"] = ["train"] * 50 + ["test"] * 10
    types = infer_types(frame, labels=["colour", "is_red", "price"])
    assert types == {
        "id": "ignore",
        "image": "image",
        "caption": "text",
        "size": "numeric",
        "shop": "category",
        "colour": "category",
        "is_red": "binary",
        "price": "numeric",
        "review": "text",
        "split": "split",
    }


def test_small_integer_columns_are_categories():
    assert infer_input_type(pd.Series([1, 2, 3, 1, 2] * 10), "rooms") == "category"
    assert infer_input_type(pd.Series(range(100)), "area") == "numeric"
    assert infer_input_type(pd.Series(range(100)), "user_id") == "ignore"
    assert infer_input_type(pd.Series([None, None]), "blank") == "ignore"
    assert infer_target_type(pd.Series([0, 1, 1, 0])) == "binary"
    assert infer_target_type(pd.Series([1, 2, 3, 4, 5])) == "category"
    assert infer_target_type(pd.Series([0.5, 1.5, 2.25, 3.0])) == "numeric"


def test_a_label_of_distinct_sentences_is_text_to_generate():
    captions = pd.Series([f"a dog number {i} runs on the grass" for i in range(60)])
    assert infer_target_type(captions) == "text"  # captions, transcripts: no --type needed
    assert infer_target_type(pd.Series([f"row{i}" for i in range(60)])) == "category"  # ids: refused later
    reviews = pd.Series(["a very good dress", "too small for me"] * 30 + ["fine"])
    assert infer_target_type(reviews) == "category"  # few distinct values: classes
