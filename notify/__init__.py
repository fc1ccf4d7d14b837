"""Post-call SMS and notifications: encoding and concatenation, SMPP and Kannel gateways, the
durable outbox with receipts, templates with content checks, and rules on call outcomes."""
