"""Signals of staff access; audit/ records them (this package never imports audit).

The one who acts is `actor` (config.context.Actor) in every signal of the project; the account
acted upon is named for what it is. Second factors: staff_member (the staff User whose factor
changed), actor, reason (str).
"""

from django.dispatch import Signal

# A staff member confirmed a new TOTP device (and received backup codes).
second_factor_enrolled = Signal()
# An operator removed a staff member's devices (lost phone); their sessions were ended too.
second_factor_reset = Signal()

# Staff API tokens (staff/api_tokens.py). kwargs: token (StaffApiToken), actor (Actor),
# and for refusals reason (str: "revoked", "expired" or "inactive").
api_token_created = Signal()
api_token_revoked = Signal()
# A known token was presented but refused. Unknown tokens are only counted (metrics and log):
# anyone can send one, and the trail must not grow per anonymous request.
api_token_refused = Signal()
