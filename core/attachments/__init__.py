"""Files sent with a message: read from an upload (reading), and put into a request (wire)."""
