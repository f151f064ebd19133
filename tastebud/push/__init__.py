"""Web push: VAPID keys, the policy that decides when a listener may be notified, what to
announce, and delivery through pywebpush (RFC 8291 encryption, RFC 8292 VAPID).

The ``push`` job (``tastebud.jobs.definitions.push``) ties these together; the app's service
worker (``tastebud/app/static/sw.js``) shows the messages.

Layer (docs/architecture.md): may import ``stores`` and the core only.
"""
