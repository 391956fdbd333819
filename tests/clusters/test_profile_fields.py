"""Profile fields that run on members' accounts: allow-listed, superusers only, every change recorded, and a new
login node drops the old host keys."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from clusters import profile_rules, services
from clusters.models import ClusterProfileChange, LaunchRecipe
from portal.errors import Forbidden
from tests.factories import ClusterProfileFactory, UserFactory

PIN = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"


@pytest.mark.parametrize(
    "command",
    [
        "srun namd2 +p{cores} {config}",
        "namd3 +p{cores} +devices {devices} {config}",
        "apptainer exec --nv {image} namd3 +p{cores} {config}",
    ],
)
def test_plain_launch_commands_pass(command) -> None:
    assert profile_rules.launch_command_problems(command) == []


@pytest.mark.parametrize(
    "command",
    [
        "srun namd2 +p$CORES {config}",
        "srun 'namd2' {config}",
        'srun "namd2" {config}',
        "srun `id` {config}",
        "srun namd2 {config}; curl evil",
        "bash -c namd2 {config}",
        "/bin/sh -c namd2 {config}",
        "env X=1 namd2 {config}",
        "exec namd2 {config}",
        "srun bash -c namd2 {config}",
        "srun namd2 {config} > /tmp/x",
        "srun namd2 {nodes} {config}",
        "srun namd2 +p{cores}",
    ],
)
def test_launch_commands_with_shell_text_are_refused(command) -> None:
    assert profile_rules.launch_command_problems(command) != []


def test_module_lines_allow_module_load_of_names_only() -> None:
    assert profile_rules.module_lines_problems("module load namd/3.0 cuda/12.2\n\nmodule load apptainer") == []
    for line in (
        "module use /home/admin/modulefiles",
        "module load /home/admin/evil",
        "module purge",
        "module load namd; rm -rf ~",
        "module load $NAMD",
        "module load -f namd",
        "ml namd",
    ):
        assert profile_rules.module_lines_problems(line) != [], line


@pytest.mark.django_db
def test_the_models_refuse_what_the_rules_refuse() -> None:
    profile = ClusterProfileFactory(module_lines="module use /home/admin/mods")
    with pytest.raises(ValidationError) as refused:
        profile.full_clean()
    assert "module_lines" in refused.value.message_dict
    recipe = LaunchRecipe(profile=profile, name="evil", kind="cpu", command="bash -c namd2 {config}")
    with pytest.raises(ValidationError) as refused:
        recipe.full_clean()
    assert "command" in refused.value.message_dict


@pytest.mark.django_db
def test_staff_who_are_not_superusers_may_not_change_member_facing_fields() -> None:
    staff = UserFactory(username="staff_t", is_staff=True)
    profile = ClusterProfileFactory(pinned_host_keys=PIN)
    profile.module_lines = "module load namd/3.0"
    with pytest.raises(Forbidden) as refused:
        services.save_profile(profile=profile, user=staff)
    assert refused.value.code == "PROFILE_FIELD_SUPERUSER_ONLY"
    profile.refresh_from_db()
    assert profile.module_lines == ""
    assert ClusterProfileChange.objects.count() == 0
    profile.sync_interval_s = 60  # not member-facing: staff may
    services.save_profile(profile=profile, user=staff)
    profile.refresh_from_db()
    assert profile.sync_interval_s == 60


@pytest.mark.django_db
def test_a_new_login_host_drops_the_pins_and_every_change_is_recorded() -> None:
    root = UserFactory(username="root_t", is_staff=True, is_superuser=True)
    profile = ClusterProfileFactory(login_host="login.old.example", pinned_host_keys=PIN)
    profile.login_host = "login.new.example"
    services.save_profile(profile=profile, user=root)
    profile.refresh_from_db()
    assert profile.pinned_host_key_lines == ()
    changes = {c.field: (c.old_value, c.new_value, c.changed_by_id) for c in ClusterProfileChange.objects.all()}
    assert changes == {
        "login_host": ("login.old.example", "login.new.example", root.pk),
        "pinned_host_keys": (PIN, "", root.pk),
    }


@pytest.mark.django_db
def test_accepting_a_host_key_is_for_superusers_and_recorded() -> None:
    staff = UserFactory(username="staff_t", is_staff=True)
    root = UserFactory(username="root_t", is_staff=True, is_superuser=True)
    profile = ClusterProfileFactory(pending_host_key=PIN)
    with pytest.raises(Forbidden):
        services.accept_pending_host_key(profile=profile, user=staff)
    services.accept_pending_host_key(profile=profile, user=root)
    assert profile.pinned_host_key_lines == (PIN,)
    (change,) = ClusterProfileChange.objects.all()
    assert (change.field, change.new_value, change.changed_by_id) == ("pinned_host_keys", PIN, root.pk)


@pytest.mark.django_db
def test_the_admin_shows_member_facing_fields_read_only_to_staff(client) -> None:
    from django.contrib.auth.models import Permission

    staff = UserFactory(username="staff_t", is_staff=True)
    staff.user_permissions.add(*Permission.objects.filter(content_type__app_label="clusters"))
    profile = ClusterProfileFactory()
    client.force_login(staff)
    page = client.get(f"/admin/clusters/clusterprofile/{profile.pk}/change/").content.decode()
    assert 'name="login_host"' not in page
    assert 'name="module_lines"' not in page
    assert 'name="sync_interval_s"' in page
