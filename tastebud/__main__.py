"""``python -m tastebud`` is the ``tastebud`` command."""

from tastebud.cli.main import app

app(prog_name="tastebud")
