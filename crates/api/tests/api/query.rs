//! Query strings: the syntax every route accepts (repeated and comma-separated lists, empty
//! values, unknown parameters), and the 422 shape of a value that does not parse, located at
//! the parameter.

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::message::{MSG, ids, with_app};

/// Asserts the whole validation body: one error, at `["query", name]`, saying `msg`.
#[track_caller]
fn assert_invalid(body: Value, name: &str, msg: &str) {
    assert_eq!(
        body,
        json!({"detail": [{"loc": ["query", name], "msg": msg, "type": "value_error"}]}),
    );
}

#[tokio::test]
async fn values_that_do_not_parse_answer_422_at_their_parameter() {
    let api = with_app().await;
    let cases = [
        ("/api/v1/app?limit=0", "limit", "must be between 1 and 250"),
        (
            "/api/v1/app?limit=251",
            "limit",
            "must be between 1 and 250",
        ),
        (
            "/api/v1/app?limit=ten",
            "limit",
            "`ten` is not a valid value",
        ),
        (
            "/api/v1/app?order=sideways",
            "order",
            "`sideways` is not `ascending` or `descending`",
        ),
        (
            "/api/v1/event-type?include_archived=maybe",
            "include_archived",
            "`maybe` is not true or false",
        ),
        (
            "/api/v1/app/joe/msg/nope?with_content=yes",
            "with_content",
            "`yes` is not true or false",
        ),
        (
            "/api/v1/stats/overview?period=2h",
            "period",
            "`2h` is not `1h` or `1d`",
        ),
    ];
    for (path, name, msg) in cases {
        let body = api.get(path).await.expect(StatusCode::UNPROCESSABLE_ENTITY);
        assert_invalid(body, name, msg);
    }
    // A timestamp's message comes from its parser; the shape is the same.
    let body = api
        .get(&format!("{MSG}?after=yesterday"))
        .await
        .expect(StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["detail"][0]["loc"], json!(["query", "after"]));
    assert_eq!(body["detail"][0]["type"], "value_error");
    assert!(
        body["detail"][0]["msg"]
            .as_str()
            .is_some_and(|msg| msg.contains("yesterday")),
        "{body}"
    );
}

#[tokio::test]
async fn lists_are_repeated_or_comma_separated_and_unknown_parameters_are_ignored() {
    let api = with_app().await;
    let mut sent = Vec::new();
    for event_type in ["a", "b", "c", "d"] {
        let message = api
            .post(MSG, json!({"eventType": event_type, "payload": {}}))
            .await
            .expect(StatusCode::ACCEPTED);
        sent.push(message["id"].as_str().expect("an id").to_owned());
    }
    let list = api
        .get(&format!(
            "{MSG}?event_types=a,b&event_types[]=c&channel=&unknown=1&order=ascending&limit=10"
        ))
        .await
        .expect(StatusCode::OK);
    assert_eq!(ids(&list), &sent[..3]);
    // The last value of a parameter given twice counts; `-` reads backwards.
    let page = api
        .get(&format!("{MSG}?limit=250&limit=1&order=ascending"))
        .await
        .expect(StatusCode::OK);
    assert_eq!(ids(&page), [sent[0].as_str()]);
    let before = api
        .get(&format!(
            "{MSG}?order=ascending&iterator=-{}&limit=5",
            sent[2]
        ))
        .await
        .expect(StatusCode::OK);
    assert_eq!(ids(&before), &sent[..2]);
}
