//! The console's files, built into the binary from `crates/api/console/`: two pages, one
//! style sheet and the ES modules the pages load. Nothing is fetched from elsewhere.

/// One file served under `/console/`.
pub(crate) struct Asset {
    /// The path after `/console/`.
    pub(crate) name: &'static str,
    pub(crate) content_type: &'static str,
    pub(crate) body: &'static str,
}

pub(super) const CONSOLE_HTML: &str = include_str!("../../console/index.html");
pub(super) const PORTAL_HTML: &str = include_str!("../../console/portal.html");

const JS: &str = "text/javascript; charset=utf-8";

macro_rules! assets {
    ($($name:literal => $content_type:expr),* $(,)?) => {
        /// Every file under `/console/`.
        pub(crate) const ASSETS: &[Asset] = &[$(Asset {
            name: $name,
            content_type: $content_type,
            body: include_str!(concat!("../../console/", $name)),
        }),*];
    };
}

assets! {
    "style.css" => "text/css; charset=utf-8",
    "favicon.svg" => "image/svg+xml",
    "js/api.js" => JS,
    "js/dom.js" => JS,
    "js/format.js" => JS,
    "js/charts.js" => JS,
    "js/forms.js" => JS,
    "js/router.js" => JS,
    "js/console.js" => JS,
    "js/portal.js" => JS,
    "js/views/overview.js" => JS,
    "js/views/applications.js" => JS,
    "js/views/application_settings.js" => JS,
    "js/views/endpoints.js" => JS,
    "js/views/endpoint_form.js" => JS,
    "js/views/messages.js" => JS,
    "js/views/message.js" => JS,
    "js/views/event_types.js" => JS,
    "js/views/tokens.js" => JS,
    "js/views/operational.js" => JS,
    "js/views/portal_link.js" => JS,
}
