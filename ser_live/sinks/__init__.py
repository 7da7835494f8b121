"""Consumers of predictions: console lines, session files, the Lab Streaming Layer outlet."""
