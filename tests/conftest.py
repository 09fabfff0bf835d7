"""Shared test set-up. The mpupdate.fakes pytest plugin (loaded from pyproject's addopts) checks
after every test that each FakeMpClient is clean and that no update is left registered."""
