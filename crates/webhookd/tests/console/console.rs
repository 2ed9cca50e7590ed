//! The operator's console in local mode: applications, endpoints, messages arriving, a failed
//! delivery resent from the page, payloads shown as text, the catalog, paging, the keyboard,
//! and the portal as an operator previews it.

use anyhow::Result;
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{Receiver, Server, eventually};
use crate::webdriver::Browser;
use crate::{browser, screenshots};

const TAB: &str = "\u{E004}";
const ENTER: &str = "\u{E007}";

/// Waits until `script` (a function body returning a boolean) is true on the page.
pub(crate) async fn until(browser: &Browser, what: &str, script: &str) -> Result<()> {
    eventually(what, || async {
        Ok(browser.script(script, vec![]).await?.as_bool() == Some(true))
    })
    .await
}

async fn field(browser: &Browser, css: &str, text: &str) -> Result<()> {
    let element = browser.wait_for(css, "").await?;
    browser.fill(&element, text).await
}

async fn click(browser: &Browser, css: &str, text: &str) -> Result<()> {
    let element = browser.wait_for(css, text).await?;
    browser.click(&element).await
}

#[tokio::test(flavor = "multi_thread")]
async fn console_manages_applications_endpoints_and_messages() -> Result<()> {
    let Some(browser) = browser().await? else {
        return Ok(());
    };
    let server = Server::start(&[]).await?;
    let receiver = Receiver::start().await?;
    let base = server.base.clone();

    // The overview, before anything exists.
    browser.goto(&format!("{base}/")).await?;
    browser.wait_for("h1", "Overview").await?;
    browser.wait_for(".stat-label", "Messages received").await?;
    screenshots(&browser, "overview-empty").await?;

    // The keyboard: the first Tab reaches the skip link, with a visible focus ring; Enter on
    // it moves the focus to the page's content.
    browser.press(TAB).await?;
    until(&browser, "the skip link has the focus", "const focused = document.activeElement; return focused.classList.contains('skip-link') && getComputedStyle(focused).outlineStyle !== 'none'").await?;
    browser.press(ENTER).await?;
    until(
        &browser,
        "the content has the focus",
        "return document.activeElement.id === 'main'",
    )
    .await?;

    // Create an application; a bad uid is refused inline with the API's message.
    browser.goto(&format!("{base}/#/apps")).await?;
    browser.wait_for("h1", "Applications").await?;

    // After navigating, the focus is on the new page's heading, and Tab goes on into the
    // page's controls with a visible focus ring.
    until(
        &browser,
        "the heading has the focus",
        "return document.activeElement.tagName === 'H1'",
    )
    .await?;
    browser.press(TAB).await?;
    until(&browser, "Tab goes on into the page's controls", "return document.activeElement.closest('main') !== null && getComputedStyle(document.activeElement).outlineStyle !== 'none'").await?;

    click(&browser, "details.create summary", "New application").await?;
    field(
        &browser,
        "details.create input[name=name]",
        "Acme <b>Inc</b>",
    )
    .await?;
    field(&browser, "details.create input[name=uid]", "not valid!").await?;
    click(
        &browser,
        "details.create button[type=submit]",
        "Create application",
    )
    .await?;
    browser
        .wait_for("[data-field=uid] .field-error", "may only contain")
        .await?;
    until(&browser, "the uid field is marked invalid", "return document.querySelector('details.create input[name=uid]').getAttribute('aria-invalid') === 'true'").await?;
    screenshots(&browser, "application-invalid").await?;
    field(&browser, "details.create input[name=uid]", "acme").await?;
    click(
        &browser,
        "details.create button[type=submit]",
        "Create application",
    )
    .await?;
    browser.wait_for("h1", "Acme <b>Inc</b>: endpoints").await?;
    let apps = server.ok(Method::GET, "/api/v1/app", None).await?;
    let app_id = apps["data"][0]["id"]
        .as_str()
        .expect("an application")
        .to_owned();
    assert_eq!(apps["data"][0]["uid"], "acme");
    screenshots(&browser, "endpoints-empty").await?;

    // Create an endpoint: a bad URL is refused inline, the receiver's URL is taken.
    click(&browser, "a.button", "Add endpoint").await?;
    browser.wait_for("h1", "Add an endpoint").await?;
    field(&browser, "input[name=url]", "ftp://example.com/hook").await?;
    click(
        &browser,
        "form.endpoint-form button[type=submit]",
        "Create endpoint",
    )
    .await?;
    until(&browser, "an error under the URL", "const box = document.querySelector('[data-field=url] .field-error'); return !box.hidden && box.textContent.length > 0").await?;
    screenshots(&browser, "endpoint-form-invalid").await?;
    field(&browser, "input[name=url]", &receiver.url).await?;
    field(&browser, "input[name=description]", "Acme's order system").await?;
    click(
        &browser,
        "form.endpoint-form button[type=submit]",
        "Create endpoint",
    )
    .await?;
    browser
        .wait_for("article.endpoint h2", &receiver.url)
        .await?;
    let endpoints = server
        .ok(Method::GET, &format!("/api/v1/app/{app_id}/endpoint"), None)
        .await?;
    let endpoint_id = endpoints["data"][0]["id"]
        .as_str()
        .expect("an endpoint")
        .to_owned();

    // Messages sent through the API arrive, and the console lists them.
    let hostile =
        "<script>window.__pwned = true</script><img src=x onerror=\"window.__pwned = true\">";
    let mut message_ids = Vec::new();
    for (index, payload) in [
        json!({"order": 1}),
        json!({"order": 2, "note": hostile}),
        json!({"order": 3}),
    ]
    .into_iter()
    .enumerate()
    {
        let sent = server
            .ok(
                Method::POST,
                &format!("/api/v1/app/{app_id}/msg"),
                Some(json!({
                    "eventType": "order.created",
                    "eventId": format!("evt-{index}"),
                    "channels": ["orders"],
                    "payload": payload,
                })),
            )
            .await?;
        message_ids.push(sent["id"].as_str().expect("a message id").to_owned());
    }
    receiver.wait_for(3).await?;
    assert!(
        receiver
            .bodies()
            .iter()
            .any(|body| body.contains("__pwned"))
    );
    browser.goto(&format!("{base}/#/app/{app_id}/msgs")).await?;
    browser.wait_for("table.messages", "evt-2").await?;
    assert_eq!(browser.find_all("table.messages tbody tr").await?.len(), 3);
    screenshots(&browser, "messages").await?;

    // Find by eventId opens the message; its hostile payload is shown as text, never run.
    field(&browser, "input[name=find]", "evt-1").await?;
    click(&browser, "form[role=search] button[type=submit]", "Open").await?;
    browser.wait_for("h1", "Message evt-1").await?;
    browser
        .wait_for("pre.payload", "<script>window.__pwned = true</script>")
        .await?;
    browser.wait_for(".delivery .badge", "Succeeded").await?;
    let safe = browser
        .script("return window.__pwned === undefined && document.querySelectorAll('main script, main img').length === 0", vec![])
        .await?;
    assert_eq!(
        safe,
        Value::Bool(true),
        "the payload's markup must stay text"
    );
    screenshots(&browser, "message").await?;

    // The endpoint fails; the console shows it, and a resend from the page delivers it.
    receiver.answer(500);
    let failed = server
        .ok(Method::POST, &format!("/api/v1/app/{app_id}/msg"), Some(json!({"eventType": "order.failed", "eventId": "evt-fail", "payload": {"order": 4}})))
        .await?;
    let failed_id = failed["id"].as_str().expect("a message id").to_owned();
    receiver.wait_for(4).await?;
    let status_path = format!("/api/v1/app/{app_id}/msg/{failed_id}/endpoint");
    eventually("the delivery is recorded as failed", || async {
        Ok(server.ok(Method::GET, &status_path, None).await?["data"][0]["status"] == 2)
    })
    .await?;
    browser
        .goto(&format!("{base}/#/app/{app_id}/msg/{failed_id}"))
        .await?;
    browser
        .wait_for(".delivery header .badge", "Failed")
        .await?;
    browser.wait_for("table.attempts", "500").await?;
    screenshots(&browser, "message-failed").await?;

    // Filtering by endpoint and delivery status finds the failed one alone.
    browser.goto(&format!("{base}/#/app/{app_id}/msgs")).await?;
    click(&browser, "details.card summary", "Filters").await?;
    click(
        &browser,
        &format!("select[name=endpoint] option[value='{endpoint_id}']"),
        "",
    )
    .await?;
    click(&browser, "select[name=status] option[value='2']", "Failed").await?;
    click(&browser, "form.filters button[type=submit]", "Apply").await?;
    browser.wait_for("table.messages", "evt-fail").await?;
    assert_eq!(browser.find_all("table.messages tbody tr").await?.len(), 1);
    screenshots(&browser, "messages-filtered").await?;

    browser
        .goto(&format!("{base}/#/app/{app_id}/msg/{failed_id}"))
        .await?;
    browser
        .wait_for(".delivery header .badge", "Failed")
        .await?;
    receiver.answer(200);
    click(&browser, ".delivery button", "Resend").await?;
    receiver.wait_for(5).await?;
    eventually("the resend is recorded", || async {
        Ok(server.ok(Method::GET, &status_path, None).await?["data"][0]["status"] == 0)
    })
    .await?;
    browser
        .script("location.reload(); return true", vec![])
        .await?;
    browser
        .wait_for(".delivery header .badge", "Succeeded")
        .await?;
    assert_eq!(browser.find_all("table.attempts tbody tr").await?.len(), 2);
    browser.wait_for("table.attempts", "Manual").await?;

    // Endpoint actions: reveal the secret, disable and enable.
    browser.goto(&format!("{base}/#/app/{app_id}")).await?;
    browser.wait_for(".health", "Last attempt").await?;
    click(&browser, "article.endpoint button", "Reveal secret").await?;
    let before = browser.wait_for("code.secret-value", "whsec_").await?;
    let old_secret = browser.text(&before).await?;
    click(&browser, "article.endpoint button", "Rotate secret").await?;
    browser.accept_dialog().await?;
    browser.wait_for(".toast", "Secret rotated").await?;
    let secret = server
        .ok(
            Method::GET,
            &format!("/api/v1/app/{app_id}/endpoint/{endpoint_id}/secret"),
            None,
        )
        .await?;
    assert_ne!(
        secret["key"].as_str(),
        Some(old_secret.as_str()),
        "the secret was rotated"
    );
    click(&browser, "article.endpoint button", "Disable").await?;
    browser
        .wait_for(".endpoint-head .badge", "Disabled")
        .await?;
    let endpoint = server
        .ok(
            Method::GET,
            &format!("/api/v1/app/{app_id}/endpoint/{endpoint_id}"),
            None,
        )
        .await?;
    assert_eq!(endpoint["disabled"], true);
    screenshots(&browser, "endpoints").await?;
    click(&browser, "article.endpoint button", "Enable").await?;
    browser.wait_for(".endpoint-head .badge", "Enabled").await?;

    // Recover since an hour ago starts a background task.
    click(&browser, "article.endpoint button", "Recover").await?;
    click(&browser, ".inline-form button[type=submit]", "Recover").await?;
    browser.wait_for(".toast", "Recovery started").await?;

    // The catalog: an event type with a schema and an example, then offered to endpoints.
    browser.goto(&format!("{base}/#/event-types/new")).await?;
    browser.wait_for("h1", "New event type").await?;
    field(&browser, "input[name=name]", "invoice.paid").await?;
    field(
        &browser,
        "textarea[name=description]",
        "An invoice was paid in full.",
    )
    .await?;
    field(
        &browser,
        "textarea[name=schemas]",
        r#"{"1": {"type": "object", "examples": [{"invoice": "inv_1", "amount": 4200}]}}"#,
    )
    .await?;
    click(&browser, "form button[type=submit]", "Create event type").await?;
    browser
        .wait_for("article.event-type h2", "invoice.paid")
        .await?;
    screenshots(&browser, "event-types").await?;
    click(&browser, "article.event-type h2 a", "invoice.paid").await?;
    browser.wait_for("h1", "Event type invoice.paid").await?;
    field(
        &browser,
        "textarea[name=description]",
        "An invoice was paid.",
    )
    .await?;
    click(&browser, "form button[type=submit]", "Save changes").await?;
    browser
        .wait_for("article.event-type", "An invoice was paid.")
        .await?;
    let event_type = server
        .ok(Method::GET, "/api/v1/event-type/invoice.paid", None)
        .await?;
    assert_eq!(event_type["description"], "An invoice was paid.");
    browser
        .goto(&format!(
            "{base}/#/app/{app_id}/endpoint/{endpoint_id}/edit"
        ))
        .await?;
    browser.wait_for(".type-list", "invoice.paid").await?;
    click(&browser, ".type-list label", "invoice.paid").await?;
    click(&browser, ".field-check label", "Ordered delivery").await?;
    // A payload filter, tried on samples first: a syntax error gives its position, then a
    // sample that does not match and one that does. It lets every later message through.
    field(&browser, "textarea[name=payloadFilter]", "payload.amount >").await?;
    click(&browser, "details.filter-test summary", "Test the filter").await?;
    field(&browser, "textarea[name=payload]", r#"{"blocked": true}"#).await?;
    click(&browser, ".filter-test button", "Test the filter").await?;
    browser
        .wait_for(".filter-verdict", "line 1, column 17")
        .await?;
    field(
        &browser,
        "textarea[name=payloadFilter]",
        "!has(payload.blocked)",
    )
    .await?;
    click(&browser, ".filter-test button", "Test the filter").await?;
    browser
        .wait_for(".filter-verdict", "Does not match")
        .await?;
    field(&browser, "textarea[name=payload]", r#"{"amount": 150}"#).await?;
    click(&browser, ".filter-test button", "Test the filter").await?;
    browser.wait_for(".filter-verdict", "Matches").await?;
    field(&browser, "input[name=retrySchedule]", "10s, 1m").await?;
    field(&browser, "input[name=requestTimeout]", "5s").await?;
    screenshots(&browser, "endpoint-form").await?;
    click(
        &browser,
        "form.endpoint-form button[type=submit]",
        "Save changes",
    )
    .await?;
    browser.wait_for("article.endpoint", "invoice.paid").await?;
    browser
        .wait_for("article.endpoint", "Ordered delivery")
        .await?;
    screenshots(&browser, "endpoints-ordered").await?;
    browser
        .wait_for("article.endpoint", "!has(payload.blocked)")
        .await?;
    browser.wait_for("article.endpoint", "10s, 1m").await?;
    screenshots(&browser, "endpoint-options").await?;
    let endpoint = server
        .ok(
            Method::GET,
            &format!("/api/v1/app/{app_id}/endpoint/{endpoint_id}"),
            None,
        )
        .await?;
    assert_eq!(endpoint["filterTypes"], json!(["invoice.paid"]));
    assert_eq!(endpoint["ordered"], true);
    assert_eq!(endpoint["payloadFilter"], "!has(payload.blocked)");
    assert_eq!(endpoint["retrySchedule"], json!(["10s", "1m"]));
    assert_eq!(endpoint["requestTimeout"], "5s");

    // Send an example of a catalog event, where the server can.
    if server
        .has_route("/api/v1/app/{app_id}/endpoint/{endpoint_id}/send-example")
        .await?
    {
        let before = receiver.count();
        click(&browser, "article.endpoint button", "Send example").await?;
        click(&browser, ".inline-form button[type=submit]", "Send example").await?;
        receiver.wait_for(before + 1).await?;
        assert!(
            receiver
                .bodies()
                .last()
                .is_some_and(|body| body.contains("inv_1"))
        );
    }

    // Keyset paging through more messages than a page holds.
    for index in 0..50 {
        server
            .ok(Method::POST, &format!("/api/v1/app/{app_id}/msg"), Some(json!({"eventType": "bulk.item", "eventId": format!("bulk-{index}"), "payload": {"index": index}})))
            .await?;
    }
    browser.goto(&format!("{base}/#/app/{app_id}/msgs")).await?;
    browser.wait_for("table.messages", "bulk-49").await?;
    assert_eq!(browser.find_all("table.messages tbody tr").await?.len(), 50);
    let total = server
        .ok(
            Method::GET,
            &format!("/api/v1/app/{app_id}/msg?limit=250"),
            None,
        )
        .await?["data"]
        .as_array()
        .map_or(0, Vec::len);
    click(&browser, "nav.pager a", "Older").await?;
    browser.wait_for("table.messages", "evt-0").await?;
    assert_eq!(
        browser.find_all("table.messages tbody tr").await?.len(),
        total - 50
    );
    click(&browser, "nav.pager a", "Newer").await?;
    browser.wait_for("table.messages", "bulk-49").await?;

    // Search by name finds the application.
    browser
        .goto(&format!("{base}/#/apps?q=acme%20%3Cb"))
        .await?;
    browser.wait_for("table", "Acme <b>Inc</b>").await?;
    screenshots(&browser, "applications").await?;

    // The overview after traffic; the pages the server has for tokens and operational webhooks.
    browser.goto(&format!("{base}/")).await?;
    browser.wait_for("h1", "Overview").await?;
    browser.wait_for(".stat-label", "Messages received").await?;
    if server.has_route("/api/v1/stats/overview").await? {
        // The rollup answers: charts, or a plain "no deliveries yet", never an error.
        browser.wait_for(".stat-label", "Due now").await?;
        assert!(browser.find_all(".callout-error").await?.is_empty());
        browser.goto(&format!("{base}/#/?period=1d")).await?;
        browser
            .wait_for(".segment[aria-current=true]", "Last day")
            .await?;
        assert!(browser.find_all(".callout-error").await?.is_empty());
        screenshots(&browser, "overview-day").await?;
        browser.goto(&format!("{base}/#/")).await?;
        browser.wait_for(".stat-label", "Messages received").await?;
    }
    // This node's latency quantiles, from the /metrics histogram.
    let p99 = browser.wait_for(".stat", "Latency p99").await?;
    assert!(
        browser.text(&p99).await?.contains("≤"),
        "{}",
        browser.text(&p99).await?
    );
    screenshots(&browser, "overview").await?;
    if server
        .has_route("/api/v1/operational-webhook/endpoint")
        .await?
    {
        browser.goto(&format!("{base}/#/operational")).await?;
        browser.wait_for("h1", "Operational webhooks").await?;
        field(
            &browser,
            "input[name=url]",
            "http://127.0.0.1:9/operational",
        )
        .await?;
        click(&browser, ".type-list label", "endpoint.disabled").await?;
        click(&browser, "form button[type=submit]", "Add endpoint").await?;
        browser
            .wait_for("article.endpoint h2", "http://127.0.0.1:9/operational")
            .await?;
        browser
            .wait_for("article.endpoint", "endpoint.disabled")
            .await?;
        let listed = server
            .ok(Method::GET, "/api/v1/operational-webhook/endpoint", None)
            .await?;
        assert_eq!(
            listed["data"][0]["eventTypes"],
            json!(["endpoint.disabled"])
        );
        click(&browser, "article.endpoint button", "Reveal secret").await?;
        browser.wait_for("code.secret-value", "whsec_").await?;
        screenshots(&browser, "operational").await?;
        click(&browser, "article.endpoint button", "Delete").await?;
        browser.accept_dialog().await?;
        browser
            .wait_for(".empty", "No operational-webhook endpoint")
            .await?;
    }

    // The portal as an operator previews it, branded.
    browser
        .goto(&format!(
            "{base}/portal?app={app_id}&title=Acme%20webhooks&accent=%23ff5a00"
        ))
        .await?;
    browser.wait_for("h1", "Endpoints").await?;
    browser.wait_for("#site-title", "Acme webhooks").await?;
    browser
        .wait_for("article.endpoint h2", &receiver.url)
        .await?;
    screenshots(&browser, "portal").await?;
    browser
        .goto(&format!("{base}/portal?app={app_id}#/msgs"))
        .await?;
    browser.wait_for("table.messages", "bulk-49").await?;
    screenshots(&browser, "portal-messages").await?;

    // Deleting the endpoint, after a confirmation.
    browser.goto(&format!("{base}/#/app/{app_id}")).await?;
    click(&browser, "article.endpoint button", "Delete").await?;
    browser.accept_dialog().await?;
    browser.wait_for(".empty", "No endpoints yet").await?;
    let (status, _) = server
        .call(
            Method::GET,
            &format!("/api/v1/app/{app_id}/endpoint/{endpoint_id}"),
            None,
        )
        .await?;
    assert_eq!(status, 404);

    // Rename the application, then delete it with everything it holds.
    click(
        &browser,
        "details.app-settings summary",
        "Application settings",
    )
    .await?;
    field(
        &browser,
        "details.app-settings input[name=name]",
        "Acme Corp",
    )
    .await?;
    click(
        &browser,
        "details.app-settings button[type=submit]",
        "Save application",
    )
    .await?;
    browser.wait_for("h1", "Acme Corp: endpoints").await?;
    click(
        &browser,
        "details.app-settings summary",
        "Application settings",
    )
    .await?;
    click(
        &browser,
        "details.app-settings button",
        "Delete application",
    )
    .await?;
    browser.accept_dialog().await?;
    browser.wait_for("h1", "Applications").await?;
    let (status, _) = server
        .call(Method::GET, &format!("/api/v1/app/{app_id}"), None)
        .await?;
    assert_eq!(status, 404);

    // API tokens, last: the first token ends local mode, for good. The page signs in with it at
    // once, so the token stays on screen; revoking it signs the page out.
    if server.has_route("/api/v1/auth/token").await? {
        browser.goto(&format!("{base}/#/tokens")).await?;
        browser.wait_for("h1", "API tokens").await?;
        field(&browser, "input[name=name]", "billing service").await?;
        click(&browser, "form button[type=submit]", "Create token").await?;
        browser.wait_for("#new-token", "whk_").await?;
        browser.wait_for("table", "billing service").await?;
        browser.wait_for("#who button", "Sign out").await?;
        // Well past the moment the node sees the token and requires one: still here.
        tokio::time::sleep(std::time::Duration::from_secs(3)).await;
        browser.wait_for("#new-token", "whk_").await?;
        browser.wait_for("table", "billing service").await?;
        screenshots(&browser, "tokens").await?;
        click(&browser, "table button", "Revoke").await?;
        browser.accept_dialog().await?;
        browser.wait_for(".toast", "Token revoked").await?;
        browser.wait_for("h1", "Sign in to webhookd").await?;
    }

    browser.quit().await?;
    Ok(())
}
