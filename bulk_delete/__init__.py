"""bulk-delete: purge custom activities from LeadSquared leads, from a spreadsheet."""

__version__ = "0.1.0"
