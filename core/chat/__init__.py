"""Talking to a model server: the HTTP client and its network guard, the call and the reading
of its stream, the blocks a reply is drawn in, model discovery, and what a server's failure
says to the user."""
