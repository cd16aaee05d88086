"""Reports: what a finding looks like to a person (text) and to a script (JSON)."""
