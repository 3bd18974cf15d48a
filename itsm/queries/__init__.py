"""Reads: who may see what, and the read models that span tables. One module per aggregate, named as in every
other layer (`queries/tickets.py` beside `services/tickets.py`, `api/tickets.py`); the API, the admin and the status
page start every list, detail and timeline from here, so a visibility rule is written once."""
