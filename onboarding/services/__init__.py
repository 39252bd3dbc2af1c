"""Services own writes, transactions and audit events: typed, keyword-only `<thing>_<action>`."""
