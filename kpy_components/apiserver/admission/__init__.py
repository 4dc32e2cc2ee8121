"""Admission: the plugins a write passes after defaulting and before validation and storage; `chain.py` runs them."""
