"""IVR Engine call control: the only package that knows SIP, SDP, RTP and Asterisk."""

__version__ = "0.1.0"
