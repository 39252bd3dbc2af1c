from django.db import migrations


def forget_post_data(apps, schema_editor):
    # Failed attempts recorded before onboarding.signals.drop_posted_form may hold the form a
    # mistyped password confirmation guarded (a client secret, a pasted cURL command).
    apps.get_model("axes", "AccessAttempt").objects.exclude(post_data="").update(post_data="")


class Migration(migrations.Migration):
    """Blank the posted forms django-axes kept of failed attempts; nothing else changes."""

    dependencies = [
        ("onboarding", "0007_version_source_label"),
        ("axes", "0010_accessattemptexpiration"),
    ]

    operations = [migrations.RunPython(forget_post_data, migrations.RunPython.noop)]
