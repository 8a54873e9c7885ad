"""galaxy's Textual dashboard: renders supervisor snapshots, sends operator commands.

Everything here reads ``engine.snapshot.Snapshot`` and writes through
``engine.commands.CommandSink``; nothing in ``engine/`` imports this package.
"""
