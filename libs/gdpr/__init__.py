"""GDPR by design: personal data in events is encrypted per participant
(crypto-shredding), so erasing a person means deleting their keys.

    cipher.py    AES-GCM sealing of one string with a data key
    masters.py   the region master keys that wrap data keys (KEK)
    vault.py     data keys kept outside the log, wrapped per region; erasure
    personal.py  sealing and opening the personal fields of an event's data
    export.py    a participant's data as one document (right of access)
    compaction.py  erasure completed on disk: each service rewrites its tables

Which fields are personal and whose key protects them is declared on each
event model (``personal_fields``, ``personal_key``, ``personal_owners`` in
``libs.events.registry.DomainEvent``).
"""
