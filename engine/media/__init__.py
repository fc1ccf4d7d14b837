"""The media half of a call: RTP sockets, the per-call media session, playout and recording."""
