"""Builders and checkers shared by tests in several folders (tests/ is on ``sys.path``)."""
