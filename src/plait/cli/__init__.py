"""The `plait` command: thin wrappers over the Python API.

Each command parses its options, calls one API function and renders the result.
User mistakes (PlaitError) print one line on stderr and exit with code 2.

  __init__.py   the app: --data-root, the list of commands, main()
  options.py    options shared by commands, and the parsers of their text values
  process.py    one-line errors and warnings, the process's start time
  render.py     tables and text on stdout
  training.py   demo, train, cv, benchmark, tune
  analysis.py   evaluate, explain, report, leaderboard
  deploy.py     predict, serve, export
  retrieval.py  embed, search, zero-shot
  cache.py      cache clear
  convert.py    convert coco
"""

from __future__ import annotations

import typer

from plait.cli import analysis, cache, convert, deploy, retrieval, training
from plait.cli.options import DataRoot
from plait.cli.process import mark_start, user_errors

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Plait: multimodal learning on tables of images, text, numbers and categories.",
)


@app.callback()
@user_errors
def confine(ctx: typer.Context, data_root: DataRoot = None) -> None:
    """Options for every command: --data-root applies to every table the command reads."""
    from plait.data import paths

    # Undone when the command ends, so an in-process call (tests) leaves no root behind.
    ctx.with_resource(paths.confined_to(data_root))
    paths.data_root()  # a bad PLAIT_DATA_ROOT is reported now, not at the first media file


COMMANDS = {
    "demo": training.demo,
    "train": training.train,
    "cv": training.cv,
    "benchmark": training.benchmark,
    "tune": training.tune,
    "evaluate": analysis.evaluate,
    "explain": analysis.explain,
    "report": analysis.report,
    "leaderboard": analysis.leaderboard,
    "predict": deploy.predict,
    "serve": deploy.serve,
    "embed": retrieval.embed,
    "search": retrieval.search,
    "zero-shot": retrieval.zero_shot,
    "export": deploy.export,
}
for name, command in COMMANDS.items():
    app.command(name=name)(user_errors(command))

cache_app = typer.Typer(no_args_is_help=True, help="The decode cache ($PLAIT_CACHE_DIR/decoded).")
cache_app.command(name="clear")(user_errors(cache.clear))
app.add_typer(cache_app, name="cache")

convert_app = typer.Typer(no_args_is_help=True, help="Tables in other formats → Plait tables.")
convert_app.command(name="coco")(user_errors(convert.coco))
app.add_typer(convert_app, name="convert")


def main() -> None:
    mark_start()
    app()
