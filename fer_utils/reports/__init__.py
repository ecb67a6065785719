"""Figures and results tables written under reports/."""
