"""E-mail machinery without rules: parsing received mail (`parse`, `automatic`, `parts`), the new part of a reply
(`reply`), thread ids and subject tags (`threading`), and an IMAP mailbox (`imap`). None of it knows tickets as
records; the services drive it and keep the records."""
