"""Opening an address that only takes a form's POST (a bookmarked Check now, a sign-in that comes
back to one) shows a page that says so and links to the form's page, never the browser's blank
"HTTP ERROR 405"; signing in from such an address comes back to the form's page."""

from __future__ import annotations

from django.test import Client

from tests.test_url_walk import every_page, world  # noqa: F401  (world is a fixture)


def test_every_post_only_address_answers_a_get_with_a_page(world, superuser):  # noqa: F811
    client = Client()
    client.force_login(superuser)
    seen = []
    for route, url, response in every_page(client, world):
        if route.admin or response.status_code != 405:
            continue
        seen.append(route.name)
        html = response.content.decode()
        assert "This address only takes what a button or form sends" in html, url
        assert "POST" in response["Allow"], url
        assert response["Cache-Control"] == "no-store, private"
    # Check now, Refresh token, the reveals, Postman, rollback, ending a grant, "Save and check".
    assert {"dashboard:check_run", "dashboard:check_refresh", "dashboard:reveal_secret",
            "dashboard:grant_end"} <= set(seen), seen


def test_a_bookmarked_check_now_links_to_the_package_checks(world, superuser):  # noqa: F811
    package = world["packages"][0]
    client = Client()
    client.force_login(superuser)
    html = client.get(f"/packages/{package.uuid}/check/").content.decode()
    assert f'href="/packages/{package.uuid}/checks/"' in html


def test_signing_in_from_a_button_address_comes_back_to_its_page(world, lead):  # noqa: F811
    package = world["packages"][0]
    client = Client()
    response = client.get(f"/packages/{package.uuid}/refresh/")
    assert response.status_code == 302
    assert response["Location"].endswith(f"?next=/packages/{package.uuid}/checks/")
    signed_in = client.post(response["Location"], {"username": "lead",
                                                   "password": "unused-in-tests-1234"},
                            follow=True)
    assert signed_in.redirect_chain[-1][0] == f"/packages/{package.uuid}/checks/"
    assert signed_in.status_code == 200


def test_other_methods_keep_the_plain_answer(world, superuser):  # noqa: F811
    package = world["packages"][0]
    client = Client()
    client.force_login(superuser)
    response = client.put(f"/packages/{package.uuid}/check/")
    assert response.status_code == 405
    assert b"This address only takes" not in response.content
