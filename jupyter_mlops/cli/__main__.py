"""``python -m jupyter_mlops.cli``: the command line, as the ``jupyter-mlops`` script runs it."""

from . import main

main()
