"""A promotion confirmed twice (a double click, a resent confirmation) is one promotion, reported
as done; anything else that changed Production since the review is still refused."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission

from onboarding.models import AuditEvent, Environment, Integration, PackageVersion, Promotion
from onboarding.services.audit import AuditAction, audit_verify
from onboarding.services.promotion import PromotionRefused, promotion_apply, promotion_preview
from tests.conftest import make_user, onboard
from tests.test_promotion import PRODUCTION_SECRET, passing_check
from tests.test_promotion_admin import apply_post


@pytest.fixture
def checked(sandbox_version) -> Integration:
    passing_check(sandbox_version)
    return sandbox_version.package.integration


@pytest.fixture
def with_production(checked) -> Integration:
    onboard(environment=Environment.PRODUCTION, client_id="prod-client-998877",
            client_secret=PRODUCTION_SECRET, company_id=555)
    return checked


def counts() -> tuple[int, int, int]:
    """Production versions, promotion records and promotion events."""
    return (PackageVersion.objects.filter(package__environment="production").count(),
            Promotion.objects.filter(kind="promotion").count(),
            AuditEvent.objects.filter(action=AuditAction.PROMOTION).count())


def reviewed(integration: Integration) -> dict[str, str]:
    """What the confirmation page names as reviewed, taken before the first post."""
    preview = promotion_preview(integration=integration, actor=None)
    return {"reviewed_sandbox_version": str(preview.sandbox_version_uuid),
            "reviewed_production_version": str(preview.production_version_uuid or "none")}


def apply(integration: Integration, actor, seen: dict[str, str], **overrides) -> Promotion:
    kwargs = {"reason": "Spring launch", "copy_credentials": False, **seen, **overrides}
    return promotion_apply(integration=integration, actor=actor, **kwargs)


@pytest.mark.parametrize("production", ["none", "a version"])
def test_the_same_promotion_posted_twice_is_one_promotion(checked, release_manager,
                                                          production):
    if production == "a version":
        onboard(environment=Environment.PRODUCTION, client_id="prod-client-998877",
                client_secret=PRODUCTION_SECRET, company_id=555)
    seen = reviewed(checked)
    first = apply(checked, release_manager, seen, copy_credentials=True)
    before = counts()
    second = apply(checked, release_manager, seen, copy_credentials=True)
    assert second == first and counts() == before
    assert audit_verify().ok


def test_someone_elses_identical_promotion_is_still_refused(with_production, release_manager):
    seen = reviewed(with_production)
    apply(with_production, release_manager, seen)
    colleague = make_user("colleague", "Release managers", is_staff=True)
    with pytest.raises(PromotionRefused) as refused:
        apply(with_production, colleague, seen)
    assert refused.value.reasons == ["Production changed since you reviewed it (it is now v2): "
                                     "review the promotion again."]
    assert counts() == (2, 1, 1)


def test_another_credentials_choice_over_the_same_review_is_still_refused(with_production,
                                                                          release_manager):
    seen = reviewed(with_production)
    apply(with_production, release_manager, seen, copy_credentials=False)
    with pytest.raises(PromotionRefused, match="Production changed since you reviewed it"):
        apply(with_production, release_manager, seen, copy_credentials=True)
    assert counts() == (2, 1, 1)


def test_a_repeat_whose_reason_is_refused_is_refused(with_production, release_manager):
    seen = reviewed(with_production)
    apply(with_production, release_manager, seen)
    with pytest.raises(PromotionRefused) as refused:
        apply(with_production, release_manager, seen, reason=" ")
    assert any("reason" in sentence.lower() for sentence in refused.value.reasons)
    assert counts() == (2, 1, 1)


def test_a_repeat_by_someone_who_lost_the_promote_right_is_refused(checked, db):
    releaser = make_user("releaser")
    releaser.user_permissions.add(Permission.objects.get(codename="promote_production"))
    releaser = type(releaser).objects.get(pk=releaser.pk)
    seen = reviewed(checked)
    apply(checked, releaser, seen)
    releaser.user_permissions.clear()
    releaser = type(releaser).objects.get(pk=releaser.pk)
    with pytest.raises(PromotionRefused, match="may not promote"):
        apply(checked, releaser, seen)
    assert counts() == (1, 1, 1)


def test_a_double_clicked_admin_promotion_reports_one_promotion_twice(client, release_manager,
                                                                      checked):
    client.force_login(release_manager)
    first = apply_post(client, checked, credentials="copy")
    # The same form again: it still names what the first post reviewed.
    data = {"action": "promote_to_production", "_selected_action": [str(checked.pk)],
            "post": "yes", "reason": "Spring launch", "confirm_password": "unused-in-tests-1234",
            f"credentials-{checked.pk}": "copy",
            f"reviewed-{checked.pk}": str(Promotion.objects.get().source_version.uuid),
            f"reviewed-production-{checked.pk}": "none"}
    second = client.post("/admin/onboarding/integration/", data)
    for response in (first, second):
        html = " ".join(response.content.decode().split())
        assert response.status_code == 200
        assert "Promoted (1)" in html and "Not promoted (0)" in html
        assert "Sandbox v1 → Production v1, with Sandbox's credentials" in html
        assert "review the promotion again" not in html
    assert counts() == (1, 1, 1)


@pytest.mark.parametrize("later", ["another reason", "after the repeat window"])
def test_a_later_identical_promotion_is_a_new_decision_not_the_old_record(
        with_production, release_manager, later):
    # It used to return the earlier promotion whatever its reason or age, dropping the new
    # reason without an event. Only a repeat within the window, with the same reason, is one.
    from datetime import timedelta

    from django.utils import timezone

    from onboarding.services.reasons import REPEAT_WINDOW

    seen = reviewed(with_production)
    first = apply(with_production, release_manager, seen)
    if later == "after the repeat window":
        Promotion.objects.filter(pk=first.pk).update(
            performed_at=timezone.now() - REPEAT_WINDOW - timedelta(seconds=1))
    reason = "Spring launch, again" if later == "another reason" else "Spring launch"
    before = counts()
    with pytest.raises(PromotionRefused) as refused:
        apply(with_production, release_manager, seen, reason=reason)
    assert refused.value.reasons == ["Production changed since you reviewed it (it is now v2): "
                                     "review the promotion again."]
    assert counts() == before


def test_a_later_identical_rollback_with_another_reason_is_refused(with_production,
                                                                   release_manager):
    from onboarding.services.promotion import rollback_apply

    apply(with_production, release_manager, reviewed(with_production))  # v2
    kwargs = {"integration": with_production, "actor": release_manager,
              "to_version_number": 1, "reviewed_current": 2}
    first = rollback_apply(**kwargs, reason="orders broke")
    assert rollback_apply(**kwargs, reason="orders broke") == first  # a double click
    with pytest.raises(PromotionRefused):
        rollback_apply(**kwargs, reason="a different reason")
