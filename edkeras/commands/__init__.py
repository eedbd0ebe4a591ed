"""One module per ``edkeras`` sub-command: ``HELP``, ``configure(parser)``, ``run(args)``."""
