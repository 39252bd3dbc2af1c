"""On PostgreSQL the database itself refuses UPDATE and DELETE of audit events, so not even a
bug or a raw SQL session of the application's role can rewrite history. (The HMAC chain is what
detects an owner who disables the trigger.) TRUNCATE is left alone: test databases are flushed
with it; verify_audit_log detects a truncated log through the chain head."""

from django.db import migrations

FORWARD = """
CREATE OR REPLACE FUNCTION onboarding_auditevent_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'audit events are append-only: % refused on onboarding_auditevent', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS onboarding_auditevent_append_only ON onboarding_auditevent;
CREATE TRIGGER onboarding_auditevent_append_only
    BEFORE UPDATE OR DELETE ON onboarding_auditevent
    FOR EACH ROW EXECUTE FUNCTION onboarding_auditevent_append_only();
"""

BACKWARD = """
DROP TRIGGER IF EXISTS onboarding_auditevent_append_only ON onboarding_auditevent;
DROP FUNCTION IF EXISTS onboarding_auditevent_append_only();
"""


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FORWARD, params=None)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(BACKWARD, params=None)


class Migration(migrations.Migration):
    dependencies = [("onboarding", "0003_package_check_claim")]

    operations = [migrations.RunPython(forward, backward)]
