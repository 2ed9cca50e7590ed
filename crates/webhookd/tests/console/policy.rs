//! What every page and file of the console carries, without a browser: the security headers,
//! the portal's configurable framing, and sources that load nothing from elsewhere and never
//! turn strings into markup or code.

use anyhow::Result;
use serde_json::Value;

use crate::support::Server;

#[tokio::test(flavor = "multi_thread")]
async fn pages_and_assets_carry_a_strict_policy() -> Result<()> {
    let server = Server::start(&[(
        "WEBHOOKD_PORTAL_FRAME_ANCESTORS",
        "'self' https://app.example.com",
    )])
    .await?;
    for (path, frame_ancestors, content_type) in [
        ("/", "frame-ancestors 'none'", "text/html"),
        (
            "/portal",
            "frame-ancestors 'self' https://app.example.com",
            "text/html",
        ),
        ("/console/style.css", "frame-ancestors 'none'", "text/css"),
        (
            "/console/js/console.js",
            "frame-ancestors 'none'",
            "text/javascript",
        ),
    ] {
        let response = server.get(path).await?;
        assert_eq!(response.status(), 200, "{path}");
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|value| value.to_str().ok())
                .unwrap_or_default()
                .to_owned()
        };
        let policy = header("content-security-policy");
        assert!(policy.contains("default-src 'self'"), "{path}: {policy}");
        assert!(policy.contains("script-src 'self'"), "{path}: {policy}");
        assert!(policy.contains("style-src 'self'"), "{path}: {policy}");
        assert!(!policy.contains("unsafe"), "{path}: {policy}");
        assert!(
            policy.contains("require-trusted-types-for 'script'"),
            "{path}: {policy}"
        );
        assert!(policy.contains(frame_ancestors), "{path}: {policy}");
        assert_eq!(header("x-content-type-options"), "nosniff", "{path}");
        assert_eq!(header("referrer-policy"), "no-referrer", "{path}");
        assert!(header("content-type").starts_with(content_type), "{path}");
    }
    let missing = server.get("/console/js/missing.js").await?;
    assert_eq!(missing.status(), 404);
    assert_eq!(missing.json::<Value>().await?["code"], "not_found");

    // Nothing loads from elsewhere, and no script builds markup from strings.
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../api/console");
    let mut files = vec![
        dir.join("index.html"),
        dir.join("portal.html"),
        dir.join("style.css"),
    ];
    let mut folders = vec![dir.join("js")];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(folder)? {
            let path = entry?.path();
            if path.is_dir() {
                folders.push(path);
            } else {
                files.push(path);
            }
        }
    }
    for file in files {
        let text = std::fs::read_to_string(&file)?;
        for banned in [
            "innerHTML",
            "outerHTML",
            "insertAdjacentHTML",
            "document.write",
            "eval(",
            "new Function",
            "src=\"http",
            "href=\"http",
            "url(http",
            "@import",
        ] {
            assert!(
                !text.contains(banned),
                "{} contains {banned}",
                file.display()
            );
        }
        if file
            .extension()
            .is_some_and(|extension| extension == "html")
        {
            assert!(
                !text.contains(" style="),
                "{} has an inline style",
                file.display()
            );
            assert!(
                !text.contains("<script>"),
                "{} has an inline script",
                file.display()
            );
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_frame_ancestors_setting_is_refused() -> Result<()> {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_webhookd"))
        .args(["serve", "--portal-frame-ancestors", "*; script-src *"])
        .env("WEBHOOKD_LISTEN", "127.0.0.1:0")
        .output()
        .await?;
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("portal_frame_ancestors"), "{stderr}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn every_file_and_module_import_is_served() -> Result<()> {
    let server = Server::start(&[]).await?;
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../api/console");
    let mut folders = vec![root.clone()];
    let mut checked = 0;
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(folder)? {
            let path = entry?.path();
            if path.is_dir() {
                folders.push(path);
                continue;
            }
            let relative = path
                .strip_prefix(&root)?
                .to_string_lossy()
                .replace('\\', "/");
            if relative.ends_with(".html") {
                continue;
            }
            let served = server.get(&format!("/console/{relative}")).await?;
            assert_eq!(served.status(), 200, "/console/{relative} is not served");
            assert_eq!(
                served.text().await?,
                std::fs::read_to_string(&path)?,
                "{relative}"
            );
            checked += 1;
            // Each `from './x.js'` of a module must be served too.
            let text = std::fs::read_to_string(&path)?;
            for import in text
                .split("from '")
                .skip(1)
                .filter_map(|rest| rest.split('\'').next())
            {
                let base = std::path::Path::new(&relative)
                    .parent()
                    .unwrap_or(std::path::Path::new(""));
                let mut parts: Vec<String> = base
                    .iter()
                    .map(|part| part.to_string_lossy().into_owned())
                    .collect();
                for part in import.split('/') {
                    match part {
                        "." => {}
                        ".." => {
                            parts.pop();
                        }
                        other => parts.push(other.to_owned()),
                    }
                }
                let target = parts.join("/");
                let answer = server.get(&format!("/console/{target}")).await?;
                assert_eq!(
                    answer.status(),
                    200,
                    "{relative} imports {import}, which is not served"
                );
            }
        }
    }
    assert!(checked >= 15, "only {checked} files checked");
    Ok(())
}
