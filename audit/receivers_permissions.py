"""Who may do what, into the trail: group membership, group permissions, user permissions.

One receiver per many-to-many relation of django.contrib.auth. Each change is recorded with the
set before and the set after, inside the transaction of the change (m2m_changed is sent inside
the ORM's own atomic block), whichever side it was made from (user.groups.add(...) or
group.user_set.add(...)), and for .set() and .clear() too: the "pre_" signal remembers the sets
of every account or group about to change, the "post_" signal compares. No change, no row.
The actor is whoever is acting (config.context): the admin user in the admin, the system in a
shell. migrate's own seeding of the role groups is not recorded (config.context.role_seeding).
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from django.contrib.auth import get_user_model
from django.contrib.auth import models as auth_models
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import Group, Permission
from django.db.models import Model, QuerySet
from django.db.models.signals import m2m_changed

from audit import actions
from audit.privacy import username_for_trail
from audit.services import Target, audit_event_record
from config.context import in_role_seeding

User = get_user_model()
_BEFORE = "_audit_m2m_before"
# The side whose set changes: a user or a group.
Owner = TypeVar("Owner", bound=Model)


def permission_names(permissions: QuerySet[Permission]) -> list[str]:
    """Permissions as "app_label.codename", the form has_perm() takes."""
    pairs = permissions.values_list("content_type__app_label", "codename")
    return sorted(f"{app_label}.{codename}" for app_label, codename in pairs)


def _name(user: AbstractBaseUser) -> str:
    return username_for_trail(user.get_username())


def _group_names(groups: QuerySet[Group]) -> list[str]:
    return sorted(groups.values_list("name", flat=True))


@dataclass(frozen=True)
class Relation(Generic[Owner]):
    owner_model: type[Owner]  # the side whose set changes: the user or the group
    related_accessor: str  # from the other side back to the owners (group.user_set, ...)
    current: Callable[[Owner], list[str]]  # owner -> sorted list of what it holds now
    record: Callable[[Owner, list[str], list[str]], None]  # (owner, before, after) -> None


def _record_membership(user: auth_models.User, before: list[str], after: list[str]) -> None:
    added = sorted(set(after) - set(before))
    removed = sorted(set(before) - set(after))
    # Group names hold spaces ("Billing admin"): the meta allow-list keeps them only under the
    # groups_* keys; the readable summary goes into the target snapshot.
    detail = "; ".join(
        f"groups {verb} {', '.join(names)}"
        for verb, names in (("added", added), ("removed", removed))
        if names
    )
    audit_event_record(
        action=actions.ROLE_CHANGED.name,
        target=Target("user", str(user.pk), f"user {_name(user)}: {detail}"),
        meta={
            "user_id": user.pk,
            "changed_fields": ["groups"],
            "groups_before": before,
            "groups_after": after,
        },
    )


def _permission_detail(before: list[str], after: list[str]) -> str:
    added = sorted(set(after) - set(before))
    removed = sorted(set(before) - set(after))
    parts = [
        f"{verb} {', '.join(names)}" for verb, names in (("+", added), ("-", removed)) if names
    ]
    return " ".join(parts)


def _record_group_permissions(group: Group, before: list[str], after: list[str]) -> None:
    audit_event_record(
        action=actions.GROUP_PERMISSIONS_CHANGED.name,
        target=Target(
            "group", str(group.pk), f"group {group.name}: {_permission_detail(before, after)}"
        ),
        meta={"group_id": group.pk, "permissions_before": before, "permissions_after": after},
    )


def _record_user_permissions(user: auth_models.User, before: list[str], after: list[str]) -> None:
    audit_event_record(
        action=actions.USER_PERMISSIONS_CHANGED.name,
        target=Target(
            "user",
            str(user.pk),
            f"user {_name(user)}: {_permission_detail(before, after)}",
        ),
        meta={"user_id": user.pk, "permissions_before": before, "permissions_after": after},
    )


# Keyed by the relation's through model (m2m_changed's sender); each owner type is its own.
RELATIONS: dict[type[Model], Relation[Any]] = {
    User.groups.through: Relation(
        User, "user_set", lambda user: _group_names(user.groups.all()), _record_membership
    ),
    Group.permissions.through: Relation(
        Group,
        "group_set",
        lambda group: permission_names(group.permissions.all()),
        _record_group_permissions,
    ),
    User.user_permissions.through: Relation(
        User,
        "user_set",
        lambda user: permission_names(user.user_permissions.all()),
        _record_user_permissions,
    ),
}


def _owners(
    relation: Relation[Any], instance: Model, reverse: bool, pk_set: set[int] | None
) -> list[Model]:
    """The users or groups whose set this change touches."""
    if not reverse:
        return [instance]
    if pk_set is None:  # clear() from the other side: every owner holding it now
        return list(getattr(instance, relation.related_accessor).all())
    return list(relation.owner_model._default_manager.filter(pk__in=pk_set))


def record_m2m_change(
    sender: type[Model],
    *,
    instance: Model,
    action: str,
    reverse: bool,
    pk_set: set[int] | None,
    **kwargs: object,
) -> None:
    relation = RELATIONS[sender]
    if action.startswith("pre_"):
        if in_role_seeding():
            return
        owners = _owners(relation, instance, reverse, pk_set)
        remembered = instance.__dict__.setdefault(_BEFORE, {})
        remembered[sender] = [(owner, relation.current(owner)) for owner in owners]
        return
    remembered = instance.__dict__.get(_BEFORE, {}).pop(sender, None)
    if remembered is None:
        return
    for owner, before in remembered:
        after = relation.current(owner)
        if after != before:
            relation.record(owner, before, after)


for _through in RELATIONS:
    m2m_changed.connect(
        record_m2m_change, sender=_through, dispatch_uid=f"audit.m2m.{_through._meta.label}"
    )
