"""`python -m monitor` is the `monitor` command."""

from monitor.cli.main import main

main()
