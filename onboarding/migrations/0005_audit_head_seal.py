"""The audit chain head gets an HMAC of its own (`seal`), and is made here, before any event, so
that a log emptied together with its head no longer looks like a new one. On PostgreSQL the
database also refuses to delete the head or to move it back to fewer events."""

from django.db import migrations, models

HEAD_TRIGGER = """
CREATE OR REPLACE FUNCTION onboarding_auditchainhead_forward_only() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' OR NEW.events < OLD.events THEN
        RAISE EXCEPTION 'the audit chain head only moves forward: % refused', TG_OP
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS onboarding_auditchainhead_forward_only ON onboarding_auditchainhead;
CREATE TRIGGER onboarding_auditchainhead_forward_only
    BEFORE UPDATE OR DELETE ON onboarding_auditchainhead
    FOR EACH ROW EXECUTE FUNCTION onboarding_auditchainhead_forward_only();
"""

DROP_HEAD_TRIGGER = """
DROP TRIGGER IF EXISTS onboarding_auditchainhead_forward_only ON onboarding_auditchainhead;
DROP FUNCTION IF EXISTS onboarding_auditchainhead_forward_only();
"""


def seal_head(apps, schema_editor):
    # The service's own sealing function: the seal must be the one audit_verify recomputes.
    from onboarding.services.audit import head_values

    head_model = apps.get_model("onboarding", "AuditChainHead")
    head, _ = head_model.objects.get_or_create(id=1)
    head_model.objects.filter(id=1).update(**head_values(
        events=head.events, last_event_id=head.last_event_id, last_hmac=head.last_hmac))
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(HEAD_TRIGGER, params=None)


def unseal_head(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP_HEAD_TRIGGER, params=None)


class Migration(migrations.Migration):
    dependencies = [("onboarding", "0004_audit_append_only")]

    operations = [
        migrations.AddField(
            model_name="auditchainhead",
            name="seal",
            field=models.CharField(blank=True, max_length=64),
        ),
        migrations.RunPython(seal_head, unseal_head),
    ]
