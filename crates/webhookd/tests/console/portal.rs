//! Signing in to the console with a token, and the portal through real app-scoped links: only
//! that application is visible, capabilities hide what they do not allow, and revoked or
//! expired links are refused. These need the server's access routes; on a server without
//! them they say so and stop.

use anyhow::Result;
use reqwest::Method;
use serde_json::{Value, json};

use crate::console::until;
use crate::support::Server;
use crate::{browser, screenshots};

const OPERATOR_TOKEN: &str = "operator-token-for-the-console-test-0123456789";

/// The portal-access route's path in the server's OpenAPI document, if it has one.
async fn portal_access_route(server: &Server) -> Result<Option<String>> {
    let document = server.ok(Method::GET, "/api/v1/openapi.json", None).await?;
    Ok(document["paths"].as_object().and_then(|paths| {
        paths
            .keys()
            .find(|path| path.contains("/auth/app-portal-access/"))
            .cloned()
    }))
}

#[tokio::test(flavor = "multi_thread")]
async fn login_and_portal_links_respect_scope_and_capabilities() -> Result<()> {
    let server = Server::start(&[("WEBHOOKD_API_TOKENS", OPERATOR_TOKEN)]).await?;
    if portal_access_route(&server).await?.is_none() {
        eprintln!("skipped: this server has no app-portal-access route yet");
        return Ok(());
    }
    let Some(browser) = browser().await? else {
        return Ok(());
    };
    let base = server.base.clone();

    // Two customers, one endpoint each, a message for the first.
    let mut apps = Vec::new();
    for name in ["Acme", "Globex"] {
        let app = server
            .ok(Method::POST, "/api/v1/app", Some(json!({"name": name})))
            .await?;
        let app_id = app["id"].as_str().expect("an id").to_owned();
        server
            .ok(
                Method::POST,
                &format!("/api/v1/app/{app_id}/endpoint"),
                Some(json!({
                    "url": format!("https://{}.example.com/hook", name.to_lowercase()),
                    "description": format!("{name}'s endpoint"),
                })),
            )
            .await?;
        apps.push(app_id);
    }
    let (acme, globex) = (apps[0].clone(), apps[1].clone());
    server
        .ok(
            Method::POST,
            &format!("/api/v1/app/{acme}/msg"),
            Some(json!({"eventType": "order.created", "payload": {"order": 1}})),
        )
        .await?;

    // The console asks for a token; a wrong one is refused, the operator's is let in.
    browser.goto(&format!("{base}/")).await?;
    browser.wait_for("h1", "Sign in").await?;
    screenshots(&browser, "login").await?;
    let token_field = browser.wait_for("input[name=token]", "").await?;
    browser.fill(&token_field, "not-a-token").await?;
    browser
        .click(&browser.wait_for("button[type=submit]", "Sign in").await?)
        .await?;
    until(&browser, "the login is refused", "return [...document.querySelectorAll('.field-error, .form-error')].some((box) => !box.hidden && box.textContent)").await?;
    browser.fill(&token_field, OPERATOR_TOKEN).await?;
    browser
        .click(&browser.wait_for("button[type=submit]", "Sign in").await?)
        .await?;
    browser.wait_for("h1", "Overview").await?;
    browser.goto(&format!("{base}/#/apps")).await?;
    browser.wait_for("table", "Globex").await?;

    // The operator makes a read-only portal link from the application's page.
    browser.goto(&format!("{base}/#/app/{acme}")).await?;
    browser
        .click(
            &browser
                .wait_for("details.portal-link summary", "Portal link")
                .await?,
        )
        .await?;
    // Everything but ViewBase off, by the labels' wording.
    for capability in [
        "Reveal endpoint secrets",
        "Rotate endpoint secrets",
        "Resend, recover",
        "Create, change and delete",
    ] {
        let label = browser
            .wait_for("details.portal-link label", capability)
            .await?;
        browser.click(&label).await?;
    }
    browser
        .click(
            &browser
                .wait_for(
                    "details.portal-link button[type=submit]",
                    "Make a portal link",
                )
                .await?,
        )
        .await?;
    let made = browser.wait_for("code.portal-url", "/portal#key=").await?;
    let console_link = browser.text(&made).await?;
    let console_link = format!(
        "{base}/portal#{}",
        console_link
            .split_once('#')
            .map(|(_, key)| key)
            .unwrap_or_default()
    );
    screenshots(&browser, "portal-link").await?;
    browser
        .click(&browser.wait_for("button", "Sign out").await?)
        .await?;
    browser.wait_for("h1", "Sign in").await?;

    // A read-only link: Acme's endpoint and messages, nothing to change, no secret.
    let link = |access: &Value| {
        format!(
            "{base}/portal#key={}",
            access["token"].as_str().unwrap_or_default()
        )
    };
    let access_path = format!("/api/v1/auth/app-portal-access/{acme}");
    let read_only = server
        .ok(
            Method::POST,
            &access_path,
            Some(json!({"capabilities": ["ViewBase"]})),
        )
        .await?;
    assert!(
        read_only["url"]
            .as_str()
            .unwrap_or_default()
            .contains("/portal#key="),
        "{read_only}"
    );
    browser.goto(&console_link).await?;
    browser.wait_for("h1", "Endpoints").await?;
    browser
        .wait_for("article.endpoint", "acme.example.com")
        .await?;
    let hash = browser.script("return location.hash", vec![]).await?;
    assert!(
        !hash.as_str().unwrap_or_default().contains("key="),
        "the key stays in the address bar: {hash}"
    );
    for hidden in [
        "Add endpoint",
        "Edit",
        "Delete",
        "Reveal secret",
        "Rotate secret",
        "Recover…",
        "Disable",
    ] {
        let shown = browser
            .script("return [...document.querySelectorAll('main a, main button')].some((control) => control.textContent.trim() === arguments[0])", vec![json!(hidden)])
            .await?;
        assert_eq!(
            shown,
            Value::Bool(false),
            "`{hidden}` is shown without its capability"
        );
    }
    assert!(browser.find_all("article.endpoint").await?.len() == 1);
    let other = browser
        .script("return fetch('/api/v1/app/' + arguments[0] + '/endpoint', {headers: {'x-webhookd-csrf': '1'}}).then((response) => response.status)", vec![json!(globex)])
        .await?;
    assert_eq!(
        other,
        json!(403),
        "another application must be out of reach"
    );
    screenshots(&browser, "portal-read-only").await?;
    browser.goto(&format!("{base}/portal#/msgs")).await?;
    browser.wait_for("table.messages", "order.created").await?;
    let resend = browser.script("return [...document.querySelectorAll('main button')].some((b) => b.textContent === 'Resend')", vec![]).await?;
    assert_eq!(resend, Value::Bool(false));

    // A link with every capability: the secret can be revealed, endpoints managed.
    let full = server
        .ok(Method::POST, &access_path, Some(json!({})))
        .await?;
    browser.goto(&link(&full)).await?;
    browser.wait_for("a.button", "Add endpoint").await?;
    browser
        .click(
            &browser
                .wait_for("article.endpoint button", "Reveal secret")
                .await?,
        )
        .await?;
    browser.wait_for("code.secret-value", "whsec_").await?;
    screenshots(&browser, "portal-full").await?;

    // Revoked: every link of the application stops working.
    let revoked = server
        .ok(
            Method::POST,
            &access_path,
            Some(json!({"capabilities": ["ViewBase"]})),
        )
        .await?;
    server
        .ok(
            Method::POST,
            &format!("/api/v1/auth/app/{acme}/expire-all"),
            Some(json!({})),
        )
        .await?;
    browser.goto(&link(&revoked)).await?;
    browser.wait_for("h1", "This link no longer works").await?;
    screenshots(&browser, "portal-refused").await?;

    // Expired: a link with the shortest expiry is refused once it passes.
    let short = server
        .ok(Method::POST, &access_path, Some(json!({"expiry": 60})))
        .await?;
    assert_eq!(
        server.open_session(&short["token"]).await?,
        200,
        "a fresh link works"
    );
    eventually_refused(&server, &short).await?;
    browser.goto(&link(&short)).await?;
    browser.wait_for("h1", "This link no longer works").await?;

    browser.quit().await?;
    Ok(())
}

/// Waits (up to a little over the one-minute expiry) until the link is refused.
async fn eventually_refused(server: &Server, access: &Value) -> Result<()> {
    let started = tokio::time::Instant::now();
    loop {
        let status = server.open_session(&access["token"]).await?;
        if status == 401 || status == 403 {
            return Ok(());
        }
        if started.elapsed() > std::time::Duration::from_secs(120) {
            anyhow::bail!("the link still works two minutes after its one-minute expiry");
        }
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
}
