//! The console and the portal in a real browser: headless Chromium, driven over WebDriver,
//! against the real binary with a temporary SQLite database and a loopback receiver.
//!
//! Without Chromium and chromedriver these tests are skipped with a message, except under
//! `CI=true`, where a missing browser is a failure. Every page visited is saved as PNG under
//! `target/screenshots/` at 1440 and 375 pixels wide, in light and dark.

mod support;
mod webdriver;

mod console;
mod policy;
mod portal;

use std::path::PathBuf;

use anyhow::Result;

use webdriver::{Browser, browser_binaries};

/// A browser, or `None` when none is installed outside CI.
pub(crate) async fn browser() -> Result<Option<Browser>> {
    match browser_binaries() {
        Some((chromium, driver)) => Ok(Some(Browser::start(&chromium, &driver).await?)),
        None if std::env::var("CI").is_ok_and(|value| value == "true") => {
            anyhow::bail!(
                "Chromium and chromedriver are needed in CI (apt-get install chromium chromium-driver)"
            )
        }
        None => {
            eprintln!("skipped: install chromium and chromium-driver to run the browser tests");
            Ok(None)
        }
    }
}

/// Where screenshots go: `target/screenshots/`.
fn screenshot_dir() -> PathBuf {
    let target_tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let dir = target_tmp
        .parent()
        .map(|target| target.join("screenshots"))
        .unwrap_or_else(|| target_tmp.join("screenshots"));
    std::fs::create_dir_all(&dir).expect("the screenshot directory");
    dir
}

/// Saves the current page as `NAME-{1440,375}-{light,dark}.png`, then goes back to 1440 px
/// wide and light.
pub(crate) async fn screenshots(browser: &Browser, name: &str) -> Result<()> {
    let dir = screenshot_dir();
    // Passing notices would cover the page in every capture.
    browser
        .script(
            "document.getElementById('toast')?.replaceChildren(); return true",
            vec![],
        )
        .await?;
    for (width, height) in [(1440, 1000), (375, 812)] {
        browser.resize(width, height).await?;
        for dark in [false, true] {
            browser.color_scheme(dark).await?;
            // Let layout and the colour scheme settle before the capture.
            browser
                .script("return new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(() => done(true))))", vec![])
                .await?;
            let overflow = browser
                .script(
                    "return document.documentElement.scrollWidth - window.innerWidth",
                    vec![],
                )
                .await?;
            anyhow::ensure!(
                overflow.as_i64().unwrap_or(0) <= 0,
                "the page {name} is {overflow} px wider than a {width} px window"
            );
            let png = browser.screenshot().await?;
            let theme = if dark { "dark" } else { "light" };
            std::fs::write(dir.join(format!("{name}-{width}-{theme}.png")), png)?;
        }
    }
    browser.resize(1440, 1000).await?;
    browser.color_scheme(false).await?;
    page_is_clean(browser, name).await
}

/// Fails on anything the page logged that points at a bug: an uncaught error, or a script,
/// style or markup sink refused by the page's policy. (Failed requests are expected: some
/// steps provoke 4xx answers on purpose.)
pub(crate) async fn page_is_clean(browser: &Browser, page: &str) -> Result<()> {
    let problems: Vec<String> = browser
        .console_log()
        .await?
        .into_iter()
        .filter(|line| {
            [
                "Uncaught",
                "Content Security Policy",
                "Trusted Type",
                "TypeError",
                "ReferenceError",
                "SyntaxError",
            ]
            .iter()
            .any(|marker| line.contains(marker))
        })
        .collect();
    anyhow::ensure!(
        problems.is_empty(),
        "the page {page} logged problems:\n{}",
        problems.join("\n")
    );
    Ok(())
}
