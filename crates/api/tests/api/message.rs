//! Messages: create (shape, payload bytes, raw payloads, inline applications, limits,
//! idempotency), read by id and eventId, lists and their filters.

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};
use webhookd_core::Key;

use crate::common::TestApi;

pub const MSG: &str = "/api/v1/app/joe/msg";

/// A fresh API with the application `joe`.
pub async fn with_app() -> TestApi {
    let api = TestApi::new();
    api.post("/api/v1/app", json!({"name": "Joe", "uid": "joe"}))
        .await
        .expect(StatusCode::CREATED);
    api
}

pub fn ids(list: &Value) -> Vec<&str> {
    list["data"]
        .as_array()
        .expect("a data list")
        .iter()
        .filter_map(|item| item["id"].as_str())
        .collect()
}

/// The payload bytes as stored, i.e. as they will be delivered.
async fn stored_payload(api: &TestApi, app: &str, msg: &str) -> Vec<u8> {
    let store = api.state().store();
    let app = store
        .get_application(&Key::parse(app))
        .await
        .unwrap()
        .expect("the application");
    store
        .get_message(&app.id, &Key::parse(msg))
        .await
        .unwrap()
        .expect("the message")
        .payload
        .to_vec()
}

#[tokio::test]
async fn create_answers_202_with_the_message() {
    let api = with_app().await;
    let created = api
        .post(
            MSG,
            json!({"eventType": "invoice.paid", "payload": {"amount": 5, "nested": {"a": [1, 2]}},
                   "eventId": "evt-1", "channels": ["billing"], "tags": ["vip"], "unknown": true}),
        )
        .await
        .expect(StatusCode::ACCEPTED);
    let id = created["id"].as_str().unwrap();
    assert!(id.starts_with("msg_") && id.len() == 30, "{id}");
    assert_eq!(created["eventType"], "invoice.paid");
    assert_eq!(
        created["payload"],
        json!({"amount": 5, "nested": {"a": [1, 2]}})
    );
    assert_eq!(created["eventId"], "evt-1");
    assert_eq!(created["channels"], json!(["billing"]));
    assert_eq!(created["tags"], json!(["vip"]));
    assert!(created["timestamp"].as_str().unwrap().ends_with('Z'));
    assert!(created.get("deliverAt").is_none());

    let bare = api
        .post(MSG, json!({"eventType": "a", "payload": {}}))
        .await
        .expect(StatusCode::ACCEPTED);
    assert_eq!(bare["eventId"], Value::Null);
    assert_eq!(bare["channels"], Value::Null);
    assert_eq!(bare["tags"], Value::Null);
    assert_eq!(bare["payload"], json!({}));
}

#[tokio::test]
async fn the_payload_is_kept_byte_for_byte() {
    let api = with_app().await;
    let payload = r#"{"z" : 1,   "a":[1, 2.50],"é":"\u00e9"}"#;
    let body = format!(r#"{{"eventType": "a", "payload": {payload}}}"#);
    let created = api
        .raw(Method::POST, MSG, body.into_bytes(), &[])
        .await
        .expect(StatusCode::ACCEPTED);
    let id = created["id"].as_str().unwrap();
    assert_eq!(stored_payload(&api, "joe", id).await, payload.as_bytes());
    let read = api.get(&format!("{MSG}/{id}")).await.expect(StatusCode::OK);
    assert_eq!(
        read["payload"],
        serde_json::from_str::<Value>(payload).unwrap()
    );
}

#[tokio::test]
async fn raw_payloads_are_delivered_as_given() {
    let api = with_app().await;
    let raw = "{\"b\":2,  \"a\" :1}\n";
    let created = api
        .post(
            MSG,
            json!({"eventType": "a", "payload": {}, "transformationsParams": {"rawPayload": raw}}),
        )
        .await
        .expect(StatusCode::ACCEPTED);
    let id = created["id"].as_str().unwrap();
    assert_eq!(created["payload"], json!({"a": 1, "b": 2}));
    assert_eq!(stored_payload(&api, "joe", id).await, raw.as_bytes());
    let read = api.get(&format!("{MSG}/{id}")).await.expect(StatusCode::OK);
    assert_eq!(read["payload"], json!({"a": 1, "b": 2}));

    let text = "not json, but bytes";
    let created = api
        .post(
            MSG,
            json!({"eventType": "a", "transformationsParams": {"rawPayload": text}}),
        )
        .await
        .expect(StatusCode::ACCEPTED);
    let id = created["id"].as_str().unwrap();
    assert_eq!(created["payload"], json!({}));
    assert_eq!(stored_payload(&api, "joe", id).await, text.as_bytes());
    let read = api.get(&format!("{MSG}/{id}")).await.expect(StatusCode::OK);
    assert_eq!(read["payload"], json!({}));
}

#[tokio::test]
async fn read_by_id_and_by_event_id() {
    let api = with_app().await;
    let created = api
        .post(
            MSG,
            json!({"eventType": "a", "payload": {"x": 1}, "eventId": "order-7"}),
        )
        .await
        .expect(StatusCode::ACCEPTED);
    let id = created["id"].as_str().unwrap();
    for key in [id, "order-7"] {
        let read = api
            .get(&format!("{MSG}/{key}/"))
            .await
            .expect(StatusCode::OK);
        assert_eq!(read, created);
    }
    let hidden = api
        .get(&format!("{MSG}/{id}?with_content=false"))
        .await
        .expect(StatusCode::OK);
    assert_eq!(hidden["payload"], json!({}));

    let app_id = api.get("/api/v1/app/joe").await.expect(StatusCode::OK)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    api.get(&format!("/api/v1/app/{app_id}/msg/order-7"))
        .await
        .expect(StatusCode::OK);
    api.get(&format!("{MSG}/order-8"))
        .await
        .expect_error(StatusCode::NOT_FOUND);
    api.get(&format!("{MSG}/msg_01ARZ3NDEKTSV4RRFFQ69G5FAV"))
        .await
        .expect_error(StatusCode::NOT_FOUND);
    api.get("/api/v1/app/nobody/msg")
        .await
        .expect_error(StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_repeated_event_id_is_a_conflict() {
    let api = with_app().await;
    let body = json!({"eventType": "a", "payload": {}, "eventId": "once"});
    api.post(MSG, body.clone())
        .await
        .expect(StatusCode::ACCEPTED);
    let conflict = api.post(MSG, body).await.expect_error(StatusCode::CONFLICT);
    assert!(conflict["detail"].as_str().unwrap().contains("once"));
    // Another application may use the same eventId.
    api.post("/api/v1/app", json!({"name": "Ann", "uid": "ann"}))
        .await
        .expect(StatusCode::CREATED);
    api.post(
        "/api/v1/app/ann/msg",
        json!({"eventType": "a", "payload": {}, "eventId": "once"}),
    )
    .await
    .expect(StatusCode::ACCEPTED);
}

#[tokio::test]
async fn the_idempotency_key_replays_the_first_answer() {
    let api = with_app().await;
    let body = serde_json::to_vec(&json!({"eventType": "a", "payload": {"n": 1}})).unwrap();
    let key = [("idempotency-key", "auto_0d5f7a2c")];
    let first = api
        .raw(Method::POST, MSG, body.clone(), &key)
        .await
        .expect(StatusCode::ACCEPTED);
    let again = api
        .raw(Method::POST, MSG, body.clone(), &key)
        .await
        .expect(StatusCode::ACCEPTED);
    assert_eq!(again, first);
    let other = api
        .raw(Method::POST, MSG, body, &[("idempotency-key", "another")])
        .await;
    assert_ne!(other.expect(StatusCode::ACCEPTED)["id"], first["id"]);
    let list = api.get(MSG).await.expect(StatusCode::OK);
    assert_eq!(ids(&list).len(), 2);
}

/// A key is scoped to the application, however the path names it: by uid or by id.
#[tokio::test]
async fn the_idempotency_key_is_the_same_by_uid_and_by_id() {
    let api = with_app().await;
    let app = api.get("/api/v1/app/joe").await.expect(StatusCode::OK);
    let by_id = format!("/api/v1/app/{}/msg", app["id"].as_str().unwrap());
    let body = serde_json::to_vec(&json!({"eventType": "a", "payload": {"n": 1}})).unwrap();
    let key = [("idempotency-key", "auto_scoped")];
    let first = api
        .raw(Method::POST, MSG, body.clone(), &key)
        .await
        .expect(StatusCode::ACCEPTED);
    let again = api
        .raw(Method::POST, &by_id, body, &key)
        .await
        .expect(StatusCode::ACCEPTED);
    assert_eq!(again, first);
    let list = api.get(MSG).await.expect(StatusCode::OK);
    assert_eq!(ids(&list).len(), 1);
}

/// The key's record of a message does not store the payload a second time (it is stored with
/// the message): it refers to the message, and a replay renders the same answer from it.
#[tokio::test]
async fn a_message_key_record_refers_to_the_message_instead_of_copying_its_payload() {
    let api = with_app().await;
    let pad = "x".repeat(8 * 1024);
    let body = serde_json::to_vec(&json!({"eventType": "a", "payload": {"pad": pad}})).unwrap();
    for (key, path) in [
        ("auto_big", MSG),
        ("auto_small", &*format!("{MSG}?with_content=false")),
    ] {
        let headers = [("idempotency-key", key)];
        let first = api
            .raw(Method::POST, path, body.clone(), &headers)
            .await
            .expect(StatusCode::ACCEPTED);
        let hash = webhookd_api::idempotency::key_hash(
            &webhookd_api::auth::Caller::Local,
            &Method::POST,
            MSG,
            key,
        );
        let since = webhookd_core::time::now() - time::Duration::hours(1);
        let stored = api
            .state()
            .store()
            .get_idempotent_response(&hash, since)
            .await
            .unwrap()
            .expect("the key's record");
        assert!(
            stored.body.len() < 256,
            "the record holds {} bytes for a {}-byte payload",
            stored.body.len(),
            pad.len()
        );
        let again = api
            .raw(Method::POST, path, body.clone(), &headers)
            .await
            .expect(StatusCode::ACCEPTED);
        assert_eq!(again, first, "the replay answers as the first did ({path})");
    }
}

#[tokio::test]
async fn an_inline_application_is_created_when_missing() {
    let api = TestApi::new();
    let body = json!({"eventType": "a", "payload": {}});
    api.post("/api/v1/app/acme/msg", body.clone())
        .await
        .expect_error(StatusCode::NOT_FOUND);

    let with_app = json!({"eventType": "a", "payload": {}, "application": {"name": "Acme", "metadata": {"k": "v"}}});
    api.post("/api/v1/app/acme/msg", with_app.clone())
        .await
        .expect(StatusCode::ACCEPTED);
    let app = api.get("/api/v1/app/acme").await.expect(StatusCode::OK);
    assert_eq!(app["name"], "Acme");
    assert_eq!(app["uid"], "acme");
    assert_eq!(app["metadata"], json!({"k": "v"}));
    // Once it exists, the inline application is ignored.
    api.post("/api/v1/app/acme/msg", with_app)
        .await
        .expect(StatusCode::ACCEPTED);
    assert_eq!(
        ids(&api.get("/api/v1/app/acme/msg").await.expect(StatusCode::OK)).len(),
        2
    );

    api.post(
        "/api/v1/app/app_01ARZ3NDEKTSV4RRFFQ69G5FAV/msg",
        json!({"eventType": "a", "payload": {}, "application": {"name": "X"}}),
    )
    .await
    .expect_error(StatusCode::NOT_FOUND);
    api.post(
        "/api/v1/app/other/msg",
        json!({"eventType": "a", "payload": {}, "application": {"name": ""}}),
    )
    .await
    .expect_invalid(&["body", "application", "name"]);
}

#[tokio::test]
async fn bad_messages_are_refused_clearly() {
    let api = with_app().await;
    let cases = [
        (json!({"payload": {}}), vec!["body", "eventType"]),
        (
            json!({"eventType": "has space", "payload": {}}),
            vec!["body", "eventType"],
        ),
        (json!({"eventType": "a"}), vec!["body", "payload"]),
        (
            json!({"eventType": "a", "payload": null}),
            vec!["body", "payload"],
        ),
        (
            json!({"eventType": "a", "payload": [1]}),
            vec!["body", "payload"],
        ),
        (
            json!({"eventType": "a", "payload": "text"}),
            vec!["body", "payload"],
        ),
        (
            json!({"eventType": "a", "payload": {}, "eventId": ""}),
            vec!["body", "eventId"],
        ),
        (
            json!({"eventType": "a", "payload": {}, "eventId": "x".repeat(257)}),
            vec!["body", "eventId"],
        ),
        (
            json!({"eventType": "a", "payload": {}, "channels": vec!["c"; 11]}),
            vec!["body", "channels"],
        ),
        (
            json!({"eventType": "a", "payload": {}, "channels": ["bad channel"]}),
            vec!["body", "channels"],
        ),
        (
            json!({"eventType": "a", "payload": {}, "tags": vec!["t"; 11]}),
            vec!["body", "tags"],
        ),
        (
            json!({"eventType": "a", "payload": {}, "deliverAt": "tomorrow"}),
            vec!["body", "deliverAt"],
        ),
        (
            json!({"eventType": "a", "payload": {}, "payloadRetentionPeriod": 0}),
            vec!["body", "payloadRetentionPeriod"],
        ),
        (
            json!({"eventType": "a", "payload": {}, "payloadRetentionPeriod": 91}),
            vec!["body", "payloadRetentionPeriod"],
        ),
        (
            json!({"eventType": "a", "payload": {}, "payloadRetentionHours": 0}),
            vec!["body", "payloadRetentionHours"],
        ),
        (
            json!({"eventType": "a", "payload": {}, "transformationsParams": {"rawPayload": 5}}),
            vec!["body", "transformationsParams", "rawPayload"],
        ),
        (
            json!({"eventType": "a", "payload": {}, "transformationsParams": {"rawPayload": ""}}),
            vec!["body", "transformationsParams", "rawPayload"],
        ),
    ];
    for (body, loc) in cases {
        api.post(MSG, body).await.expect_invalid(&loc);
    }
    let malformed = api
        .raw(
            Method::POST,
            MSG,
            br#"{"eventType": "a", "payload": {"#.to_vec(),
            &[],
        )
        .await;
    malformed.expect_error(StatusCode::BAD_REQUEST);
    api.get(&format!("{MSG}?limit=251"))
        .await
        .expect_invalid(&["query", "limit"]);
    api.get(&format!("{MSG}?before=soon"))
        .await
        .expect_invalid(&["query", "before"]);
}

#[tokio::test]
async fn payloads_over_the_limit_are_413() {
    let api = with_app().await;
    let big = "x".repeat(70 * 1024);
    let too_large = api
        .post(MSG, json!({"eventType": "a", "payload": {"data": big}}))
        .await
        .expect_error(StatusCode::PAYLOAD_TOO_LARGE);
    assert!(
        too_large["detail"].as_str().unwrap().contains("65536"),
        "{too_large}"
    );
    api.post(
        MSG,
        json!({"eventType": "a", "transformationsParams": {"rawPayload": big}}),
    )
    .await
    .expect_error(StatusCode::PAYLOAD_TOO_LARGE);
    let far_too_large = "y".repeat(200 * 1024);
    api.post(
        MSG,
        json!({"eventType": "a", "payload": {"data": far_too_large}}),
    )
    .await
    .expect_error(StatusCode::PAYLOAD_TOO_LARGE);
    let fits = "z".repeat(60 * 1024);
    api.post(MSG, json!({"eventType": "a", "payload": {"data": fits}}))
        .await
        .expect(StatusCode::ACCEPTED);
}

#[tokio::test]
async fn options_are_stored_and_shown() {
    let api = with_app().await;
    let created = api
        .post(
            MSG,
            json!({"eventType": "a", "payload": {}, "deliverAt": "2030-01-02T03:04:05",
                   "payloadRetentionPeriod": 5}),
        )
        .await
        .expect(StatusCode::ACCEPTED);
    assert_eq!(created["deliverAt"], "2030-01-02T03:04:05.000Z");
    let id = created["id"].as_str().unwrap();
    let store = api.state().store();
    let app = store
        .get_application(&Key::parse("joe"))
        .await
        .unwrap()
        .unwrap();
    let message = store
        .get_message(&app.id, &Key::parse(id))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        message.retain_payload_until,
        Some(message.created_at + time::Duration::days(5))
    );
    let read = api.get(&format!("{MSG}/{id}")).await.expect(StatusCode::OK);
    assert_eq!(read["deliverAt"], "2030-01-02T03:04:05.000Z");

    let hours = api
        .post(MSG, json!({"eventType": "a", "payload": {}, "payloadRetentionHours": 2, "payloadRetentionPeriod": 30}))
        .await
        .expect(StatusCode::ACCEPTED);
    let message = store
        .get_message(&app.id, &Key::parse(hours["id"].as_str().unwrap()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        message.retain_payload_until,
        Some(message.created_at + time::Duration::hours(2))
    );
}

#[tokio::test]
async fn lists_are_newest_first_and_filter() {
    let api = with_app().await;
    let bodies = [
        json!({"eventType": "user.created", "payload": {"n": 0}, "channels": ["eu"], "tags": ["t1"]}),
        json!({"eventType": "user.deleted", "payload": {"n": 1}, "channels": ["us"]}),
        json!({"eventType": "invoice.paid", "payload": {"n": 2}, "channels": ["eu", "us"], "tags": ["t1", "t2"]}),
        json!({"eventType": "user.created", "payload": {"n": 3}}),
    ];
    let mut created = Vec::new();
    for body in bodies {
        let message = api.post(MSG, body).await.expect(StatusCode::ACCEPTED);
        created.push(message["id"].as_str().unwrap().to_owned());
    }
    let newest_first: Vec<&str> = created.iter().rev().map(String::as_str).collect();

    let all = api.get(MSG).await.expect(StatusCode::OK);
    assert_eq!(ids(&all), newest_first);
    assert_eq!(all["done"], true);
    assert_eq!(all["data"][0]["payload"], json!({"n": 3}));

    let first = api
        .get(&format!("{MSG}?limit=3"))
        .await
        .expect(StatusCode::OK);
    assert_eq!(ids(&first), newest_first[..3]);
    assert_eq!(first["done"], false);
    assert_eq!(first["prevIterator"], format!("-{}", newest_first[0]));
    let iterator = first["iterator"].as_str().unwrap();
    let rest = api
        .get(&format!("{MSG}?limit=3&iterator={iterator}"))
        .await
        .expect(StatusCode::OK);
    assert_eq!(ids(&rest), newest_first[3..]);
    assert_eq!(rest["done"], true);
    let ascending = api
        .get(&format!("{MSG}?order=ascending"))
        .await
        .expect(StatusCode::OK);
    assert_eq!(ids(&ascending), created);

    let filtered = |query: &'static str| {
        let api = &api;
        async move {
            api.get(&format!("{MSG}?{query}"))
                .await
                .expect(StatusCode::OK)
        }
    };
    let by_type = filtered("event_types=user.created,user.deleted").await;
    assert_eq!(ids(&by_type), [&*created[3], &created[1], &created[0]]);
    let repeated = filtered("event_types=invoice.paid&event_types=user.deleted").await;
    assert_eq!(ids(&repeated), [&*created[2], &created[1]]);
    assert_eq!(
        ids(&filtered("channel=eu").await),
        [&*created[2], &created[0]]
    );
    assert_eq!(ids(&filtered("tag=t2").await), [&*created[2]]);
    assert_eq!(ids(&filtered("tag=t1").await), [&*created[2], &created[0]]);
    assert!(ids(&filtered("channel=asia").await).is_empty());

    let hidden = filtered("with_content=false").await;
    assert!(
        hidden["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|message| message["payload"] == json!({}))
    );

    let future = filtered("after=2999-01-01T00:00:00Z").await;
    assert_eq!(
        future,
        json!({"data": [], "iterator": null, "prevIterator": null, "done": true})
    );
    assert_eq!(ids(&filtered("before=2999-01-01T00:00:00").await).len(), 4);
    assert_eq!(ids(&filtered("after=2000-01-01T00:00:00Z").await).len(), 4);
    assert!(ids(&filtered("before=2000-01-01T00:00:00Z").await).is_empty());
}
