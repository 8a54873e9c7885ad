"""Escalation to a cloud model, only after the operator approves; cost ledger; redaction."""
