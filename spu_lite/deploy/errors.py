"""What a node tells others when something fails: the rule, never the data.

A node's failure reason goes to the driver and, as an abort, to every peer. Many
exceptions quote values (a loader's own error text, "input magnitude 1.2e14", a
numpy message with array contents), so a node sends only:

  * the message of spu-lite's own errors whose text is built from public values
    (peer failures, loader refusals, policy refusals, credentials, the wire format);
  * an exception's `public_reason` attribute when it has one (e.g. an input outside
    the fixed-point range names the input and the range, not the value);
  * otherwise the exception's type and the node's name, with a pointer to the node's
    own log, where the full text is written (the operator sees it; nobody else does).
"""
from __future__ import annotations

from spu_lite.runtime.link import PeerError
from spu_lite.runtime.net.auth import CredentialError
from spu_lite.runtime.net.wire import WireError

from .loaders import LoaderError
from .policy import JobRefused

#: exception types whose message never contains a private value (a refusal names the
#: program's digest and the policy rule)
PUBLIC_TYPES = (PeerError, LoaderError, CredentialError, WireError, JobRefused)


def public_reason(e: BaseException, me: str) -> str:
    """The text of `e` that may leave this node (see the module docstring)."""
    if isinstance(e, PUBLIC_TYPES):
        return str(e) if isinstance(e, PeerError) else f"{type(e).__name__}: {e}"
    own = getattr(e, "public_reason", None)
    if isinstance(own, str) and own:
        return f"{type(e).__name__}: {own}"
    return (f"{type(e).__name__} at {me} (its text is not sent: it may quote private "
            f"values; see {me}'s log)")
