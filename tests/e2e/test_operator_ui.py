"""What an operator does in a browser (headless Chromium): log into Flower and see every service's
workers and a handled user.created; log into a service's admin and replay a dead letter."""

from __future__ import annotations

import shutil
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from common.contracts import Envelope, OrderLine, OrderPlaced
from tests.e2e.conftest import FLOWER_LOGIN
from tests.support.polling import wait_for
from tests.support.processes import wait_log
from tests.support.suite import SERVICES, Suite

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert shutil.which(CHROMIUM), "Chromium is needed: apt-get install chromium (make test on CI does)"
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        yield chromium
        chromium.close()


def test_flower_shows_every_services_workers_and_a_handled_user_created(
    locked: Suite, browser: Browser
) -> None:
    # given a sign-up handled by both consumers once Flower has turned their task events on (it
    # does so a few seconds after it starts; what a worker handled before, Flower never hears of)
    for service in ("orders", "notifications"):
        wait_log(locked.processes[f"{service}-worker"], "enabled by remote", timeout=60)
    locked.sign_up("flower")
    flower = f"http://127.0.0.1:{locked.ports['flower']}"

    # when an operator opens Flower without credentials, then with them
    with pytest.raises(urllib.error.HTTPError, match="401"):
        urllib.request.urlopen(flower + "/", timeout=10)
    context = browser.new_context(http_credentials={"username": FLOWER_LOGIN[0], "password": FLOWER_LOGIN[1]})
    page = context.new_page()

    # then the workers page lists a worker of each service (the Procfile names them <service>@host)
    def workers_listed() -> bool:
        page.goto(flower + "/workers")
        text = page.locator("table#workers-table").text_content(timeout=10_000) or ""
        return all(f"{service}@" in text for service in SERVICES)

    wait_for(workers_listed, timeout=60, what="the three services' workers in Flower")

    # and the tasks page shows user.created handled (succeeded)
    def user_created_succeeded() -> bool:
        page.goto(flower + "/tasks")
        page.wait_for_selector("table#tasks-table tbody tr", timeout=10_000)
        rows = page.locator("table#tasks-table tbody tr").all_text_contents()
        return any("user.created" in row and "SUCCESS" in row for row in rows)

    wait_for(user_created_succeeded, timeout=60, what="a succeeded user.created task in Flower")
    context.close()


def login(page: Page, base: str, username: str, password: str) -> None:
    page.goto(base + "/admin/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("input[type=submit]")
    expect(page.locator("#site-name")).to_be_visible()


def test_an_operator_replays_a_dead_letter_from_the_admin(locked: Suite, browser: Browser) -> None:
    # given an order.placed that notifications parked: its customer was not known yet
    customer = uuid.uuid4()
    event = OrderPlaced(
        order_id=uuid.uuid4(),
        customer_id=customer,
        total=Decimal("3.00"),
        currency="EUR",
        lines=(OrderLine(sku="A", quantity=1, unit_price=Decimal("3.00")),),
    )
    envelope = Envelope.wrap(event, producer="orders", aggregate_id=str(event.order_id), aggregate_version=1)
    locked.publish_event(envelope)
    wait_for(
        lambda: str(envelope.id) in locked.manage("notifications", "dlq", "list"), what="the dead letter"
    )
    # and the cause is fixed: the customer becomes known
    locked.sql(
        "notifications",
        "INSERT INTO notifications_contact (user_id, email, first_name, version, "
        "created_at, updated_at) VALUES (%s, 'late@example.com', 'Late', 1, now(), now())",
        (customer,),
    )
    password = "Adm1n-" + uuid.uuid4().hex
    locked.manage(
        "notifications",
        "createsuperuser",
        "--noinput",
        "--username",
        "ops",
        "--email",
        "ops@example.com",
        DJANGO_SUPERUSER_PASSWORD=password,
    )

    # when the operator opens the dead letters page, selects it and replays it
    page = browser.new_page()
    base = locked.url("notifications", "")
    login(page, base, "ops", password)
    page.goto(base + "/admin/bus/deadletter/")
    row = page.locator("tr.dead-letter", has_text=str(envelope.id))
    expect(row).to_have_count(1)
    row.locator("input[type=checkbox]").check()
    page.click("#replay-selected")

    # then the admin confirms, the dead letter is gone, and the notification was sent
    expect(page.locator(".messagelist")).to_contain_text("Replayed 1 dead letter(s)")
    expect(page.locator("tr.dead-letter", has_text=str(envelope.id))).to_have_count(0)
    wait_for(
        lambda: (
            locked.sql(
                "notifications",
                "SELECT kind FROM notifications_notification WHERE event_id = %s",
                (envelope.id,),
            )
            == [("order_placed",)]
        ),
        what="the replayed notification",
    )


def test_the_api_docs_render_with_nothing_from_outside_under_their_csp(
    locked: Suite, browser: Browser
) -> None:
    """Swagger UI came from a CDN: a blank page without internet, and a foreign script on the
    admin's origin. Now every request stays on the API's origin, and its CSP says so."""
    page = browser.new_page()
    outside: list[str] = []
    violations: list[str] = []

    def only_this_origin(route: Any) -> None:
        if route.request.url.startswith(locked.url("users", "/")):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    page.route("**/*", only_this_origin)
    page.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)
    response = page.goto(locked.url("users", "/api/docs/"))
    assert response is not None and response.status == 200
    assert "script-src 'self'" in response.headers["content-security-policy"]
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("users service API", timeout=20_000)
    expect(page.locator(".opblock-summary-path").first).to_be_visible()
    assert outside == [] and violations == []
    page.close()
