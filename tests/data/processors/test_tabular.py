import json

import numpy as np
import pandas as pd
import pytest
import torch

from plait.data.processors import CategoryProcessor, NumericProcessor
from plait.errors import ConfigError, DataError


def test_numeric_standardises_and_flags_missing():
    values = pd.Series([1.0, 2.0, 3.0, None, np.inf])
    proc = NumericProcessor().fit(values)
    assert proc.center_ == pytest.approx(2.0)
    enc = proc.transform(values)
    assert enc.values.shape == (5, 2)
    assert enc.values[:, 1].tolist() == [0, 0, 0, 1, 1]  # missing flag (inf counts as missing)
    assert enc.values[3, 0] == 0 and enc.values[1, 0] == pytest.approx(0.0)
    assert enc.present.all()  # the flag carries the missingness


def test_stray_strings_are_named():
    with pytest.raises(DataError, match=r"column 'area', row 3: expected a number, got '1,200'"):
        NumericProcessor().fit(pd.Series([1.0, 2.0, "1,200", "n/a"]), "area")


def test_numeric_accepts_numeric_strings_and_names_bad_cells():
    proc = NumericProcessor().fit(pd.Series(["1", "2.5", ""]))
    assert proc.center_ == pytest.approx(1.75)
    with pytest.raises(
        DataError, match=r"column 'age', row 2: expected a number, got 'abc' \(1 such cells\)"
    ):
        proc.transform(pd.Series([3, "abc"]), "age")


def test_numeric_constant_column_and_log():
    assert NumericProcessor().fit(pd.Series([5.0, 5.0])).scale_ == 1.0
    proc = NumericProcessor(log=True).fit(pd.Series([0.0, 9.0]))
    assert proc.center_ == pytest.approx(np.log1p(9) / 2)
    with pytest.raises(DataError, match="non-negative"):
        NumericProcessor(log=True).fit(pd.Series([-1.0]), "x")


def test_category_vocabulary_unknown_bucket_and_missing():
    values = pd.Series(["b", "a", "b", None, 3.0, "3"])
    proc = CategoryProcessor().fit(values)
    assert proc.vocab_ == ["3", "b", "a"]  # by frequency, then name; 3.0 == "3"
    enc = proc.transform(pd.Series(["a", "zzz", None]))
    assert enc.values.tolist() == [3, 0, 0]
    assert enc.present.tolist() == [True, True, False]
    assert CategoryProcessor(min_frequency=2).fit(values).vocab_ == ["3", "b"]
    assert CategoryProcessor(max_categories=1).fit(values).vocab_ == ["3"]


def test_unknown_options_and_scalings_are_named():
    with pytest.raises(ConfigError, match="unknown numeric preprocessing option.*valid: scaling, log"):
        NumericProcessor.create({"scale": "robust"}, "x")
    with pytest.raises(ConfigError, match="scaling must be auto, standard, robust or quantile"):
        NumericProcessor(scaling="minmax").fit(pd.Series([1.0]), "x")


def test_robust_scaling_ignores_outliers():
    values = pd.Series([1.0, 2.0, 3.0, 4.0, 5.0, 1e6])
    standard = NumericProcessor(scaling="standard").fit(values).transform(values).values[:5, 0]
    robust = NumericProcessor(scaling="robust").fit(values).transform(values).values[:5, 0]
    assert standard.std() < 1e-3  # squashed together by the outlier
    assert robust.tolist() == pytest.approx([-1.0, -0.6, -0.2, 0.2, 0.6])  # median 3.5, IQR 2.5


def test_quantile_scaling_is_monotonic_and_bounded():
    values = pd.Series(np.random.default_rng(0).exponential(size=500))
    proc = NumericProcessor(scaling="quantile").fit(values)
    scaled = proc.transform(pd.Series([-5.0, 0.1, 1.0, 3.0, 1e9])).values[:, 0]
    assert scaled.tolist() == sorted(scaled.tolist())
    assert scaled.abs().max() <= 3.1
    middle = proc.transform(pd.Series([float(values.median())])).values[0, 0]
    assert abs(middle) < 0.05
    loaded = NumericProcessor.from_state(json.loads(json.dumps(proc.state())))
    assert torch.equal(loaded.transform(values).values, proc.transform(values).values)


def test_auto_scaling_quantiles_a_long_tail_and_standardises_the_rest():
    rng = np.random.default_rng(0)
    tail = pd.Series(rng.lognormal(8, 1.0, 500))  # areas, prices: skewness far above 0.99
    bell = pd.Series(rng.normal(40, 10, 500))
    assert NumericProcessor().fit(tail).method_ == "quantile"
    assert NumericProcessor().fit(bell).method_ == "standard"
    assert NumericProcessor(scaling="standard").fit(tail).method_ == "standard"  # the config wins
    scaled = NumericProcessor().fit(tail).transform(tail).values[:, 0]
    assert scaled.abs().max() < 3.2 and abs(float(scaled.mean())) < 0.1  # no squashed tail
    saved = NumericProcessor().fit(tail).state()
    del saved["fitted"]["method_"]  # a run saved before "auto" scaled by `scaling`
    old = NumericProcessor.from_state({**saved, "params": {"scaling": "standard", "log": False}})
    assert old.method == "standard"


def test_integer_codes_also_get_an_id_per_value():
    from plait.data.processors import TabularProcessor
    from plait.data.processors.tabular import looks_like_code

    rng = np.random.default_rng(0)
    zipcode = pd.Series(rng.choice([85255, 92880, 93446, 94531], 60))
    frame = pd.DataFrame({"zip": zipcode, "area": rng.normal(2000, 300, 60), "kind": ["a", "b"] * 30})
    assert looks_like_code(zipcode)
    assert not looks_like_code(frame["area"])  # not integers
    assert not looks_like_code(pd.Series(range(60)))  # 60 distinct values: a quantity or an id
    assert not looks_like_code(pd.Series([1, 2, 3, 1, 2, 3]))  # two rows per value are too few to learn from
    proc = TabularProcessor({"zip": {}, "area": {}}, {"kind": {}}).fit(frame)
    assert proc.codes == ["zip"]
    encoded = proc.transform(frame).values
    assert encoded.shape == (60, 2 * 2 + 1 + 1)  # [value, flag] × 2, kind's id, zip's id
    assert proc.encoder_kwargs() == {"num_numeric": 2, "category_sizes": [3, 5]}
    assert set(encoded[:, -1].tolist()) == {1.0, 2.0, 3.0, 4.0}
    unseen = proc.transform(frame.assign(zip=10001)).values[:, -1]
    assert (unseen == 0).all()  # an unseen code is the unknown bucket; its number still counts
    loaded = TabularProcessor.from_state(json.loads(json.dumps(proc.state())))
    assert torch.equal(loaded.transform(frame).values, encoded)
    off = TabularProcessor({"zip": {"code": False}, "area": {}}, {"kind": {}}).fit(frame)
    assert off.codes == [] and off.transform(frame).values.shape == (60, 5)
    with pytest.raises(ConfigError, match="column 'zip': code must be auto, true or false"):
        TabularProcessor({"zip": {"code": "yes"}}).fit(frame)
    old = proc.state()
    del old["fitted"]["codes"]  # a run saved before codes
    assert TabularProcessor.from_state(old).transform(frame).values.shape == (60, 5)
