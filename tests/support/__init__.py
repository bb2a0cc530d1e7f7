"""Helpers shared by the tests: real local servers and a reference matcher."""
