"""The ``polya`` command line."""
