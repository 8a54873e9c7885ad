"""The ``galaxy`` command line. Each ``cmd_*.py`` module registers its sub-commands."""
