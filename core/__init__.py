"""Contracts every area shares: the Call protocol and its events, the clock, task scopes, the
event bus, logging and the base exception of each area. Imports nothing of the project but
:mod:`audio.pcm`."""
