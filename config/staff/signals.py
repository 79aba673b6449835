"""Signals of staff access; audit/ records them (this package never imports audit).

All kwargs: user (the staff User concerned), actor (config.context.Actor), reason (str).
"""

from django.dispatch import Signal

# A staff member confirmed a new TOTP device (and received backup codes).
second_factor_enrolled = Signal()
# An operator removed a staff member's devices (lost phone); their sessions were ended too.
second_factor_reset = Signal()
