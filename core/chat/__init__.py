"""Talking to a model server: client and network guard, the call and its stream, reply blocks,
model discovery, and failures as messages for the user."""
