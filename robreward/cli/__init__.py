"""The `robreward` command: one thin module per verb (each defines register(subparsers))."""
