"""`python -m plait.cli`, as the `plait` console script."""

from plait.cli import main

main()
