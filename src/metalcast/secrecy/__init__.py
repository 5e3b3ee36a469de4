"""Secrets: what counts as one, how it is masked, scrubbed, sealed and rotated.

- :mod:`.detect`: the one definition of what is secret; :func:`mask` (API
  responses), :func:`scrub_text` (history, ``last_error``, logs, error messages),
  :func:`keep_masked` (masked values a client sends back keep the stored secret).
- :mod:`.box`: :class:`SecretBox` encrypts secrets before they are stored and
  decrypts them where the conductor needs them.
- :mod:`.keyfile`: the key on disk and its rotation.
"""

from metalcast.secrecy.box import SecretBox, UndecryptableSecret
from metalcast.secrecy.detect import (
    MASK,
    display_url,
    holds_secret,
    is_sealed,
    is_secret_key,
    keep_masked,
    mask,
    scrub_text,
    secret_values,
    shown,
)

__all__ = [
    "MASK",
    "SecretBox",
    "UndecryptableSecret",
    "display_url",
    "holds_secret",
    "is_sealed",
    "is_secret_key",
    "keep_masked",
    "mask",
    "scrub_text",
    "secret_values",
    "shown",
]
