"""The Python API in a few lines (run from the repository root after `make demo`).

    .venv/bin/python examples/api.py
"""

import plait
from plait.data.builtin import easy_vqa

table = easy_vqa()
test = table[table["split"] == "test"].drop(columns="split").head(200)

predictor = plait.load("runs/demo")  # written by `make demo`
print(predictor.evaluate(test))  # {"accuracy": ..., "macro_f1": ...}
print(predictor.predict(test).head())  # answer + answer_prob_<class> columns
