"""What accounts tells the rest of the platform.

`access_revoked` goes out once a key is revoked or a user disabled has committed, with
`user_id` and `key_prefix` (None: every credential of the user). Sockets opened with that
credential are closed by its receiver (inference/revocation.py): accounts does not reach into
the streams itself, as inference depends on accounts and not the other way.
"""

from django.dispatch import Signal

access_revoked = Signal()
