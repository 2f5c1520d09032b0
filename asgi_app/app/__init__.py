"""The kit's real-time service: WebSockets, Server-Sent Events and streaming over Redis."""
