"""API keys: shown once, stored only as a hash, checked in constant time, revocable."""

import hashlib
import io

import pytest
from django.core.management import CommandError, call_command

from accounts.models import ApiKey
from accounts.services import api_key_authenticate, api_key_create, api_key_revoke

pytestmark = pytest.mark.django_db


def test_a_new_key_is_shown_once_and_only_its_hash_is_stored(owner):
    issued = api_key_create(user=owner, name="laptop")

    stored = ApiKey.objects.get(pk=issued.api_key.pk)
    scheme, prefix, secret = issued.plaintext.split("_", 2)
    assert (scheme, prefix) == ("djn", stored.prefix)
    assert len(secret) >= 40
    assert stored.secret_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in str(ApiKey.objects.filter(pk=stored.pk).values().first())


def test_the_right_key_authenticates_its_owner_and_records_its_use(owner):
    issued = api_key_create(user=owner)

    api_key = api_key_authenticate(plaintext=issued.plaintext)

    assert api_key.user == owner
    assert ApiKey.objects.get(pk=api_key.pk).last_used_at is not None


@pytest.mark.parametrize(
    "mangle",
    [
        lambda key: key[:-1] + ("A" if key[-1] != "A" else "B"),
        lambda key: key.replace("djn_", "xyz_"),
        lambda key: key.split("_")[0] + "_" + key.split("_")[1],
        lambda key: "",
        lambda key: "djn_" + "0" * 12 + "_" + key.split("_", 2)[2],
    ],
)
def test_a_wrong_or_malformed_key_authenticates_nobody(owner, mangle):
    issued = api_key_create(user=owner)

    assert api_key_authenticate(plaintext=mangle(issued.plaintext)) is None


def test_a_revoked_key_is_refused_at_once(owner):
    issued = api_key_create(user=owner)

    api_key_revoke(api_key=issued.api_key)

    assert api_key_authenticate(plaintext=issued.plaintext) is None


def test_a_disabled_users_keys_stop_working(owner):
    issued = api_key_create(user=owner)
    owner.is_active = False
    owner.save()

    assert api_key_authenticate(plaintext=issued.plaintext) is None


def test_createapikey_prints_a_working_key_once(owner):
    out, err = io.StringIO(), io.StringIO()

    call_command("createapikey", "owner", "--name", "ci", stdout=out, stderr=err)

    plaintext = out.getvalue().strip()
    assert api_key_authenticate(plaintext=plaintext).name == "ci"
    assert "will not be shown again" in err.getvalue()


def test_createapikey_refuses_an_unknown_user(db):
    with pytest.raises(CommandError, match="No user named 'ghost'"):
        call_command("createapikey", "ghost")
