"""Outbound campaigns and voice notification: contacts, dialler, pacing, retries, answering-
machine detection, opt-out, caller-ID pools and branded caller ID (docs/campaigns.md)."""
