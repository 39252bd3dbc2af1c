"""The roles a new installation starts with, as Django groups an admin can adjust."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

GROUPS = {
    "Integration leads": [
        "view_sandbox", "check_sandbox", "edit_sandbox", "reveal_sandbox", "view_production",
    ],
    "Release managers": [
        "view_sandbox", "check_sandbox", "view_production", "check_production",
        "edit_production", "promote_production",
    ],
    "Auditors": ["view_auditevent", "view_access_report", "view_sandbox", "view_production"],
}


def create_groups(apps, schema_editor):
    # Permissions are normally created after all migrations; the groups need them now.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, codenames in GROUPS.items():
        group, _ = Group.objects.get_or_create(name=name)
        group.permissions.add(
            *Permission.objects.filter(content_type__app_label="onboarding", codename__in=codenames)
        )


def remove_groups(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=GROUPS).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("onboarding", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_groups, remove_groups)]
