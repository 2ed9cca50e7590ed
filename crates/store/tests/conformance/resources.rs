//! Applications, endpoints and event types: CRUD, uid conflicts (with the text a 409
//! carries), and cursor pagination.

use webhookd_core::EndpointId;
use webhookd_core::Key;
use webhookd_core::model::RetiredSecret;
use webhookd_core::signing::Secret;
use webhookd_core::time::now;
use webhookd_store::{Cursor, Order, PageRequest, Store, StoreError, Taken};

use crate::support::{application, endpoint, event_type, message, minutes};

fn conflict(result: Result<(), StoreError>) -> String {
    match result {
        Err(StoreError::Conflict(conflict)) => {
            assert_ne!(
                conflict.taken,
                Taken::Unique,
                "{conflict:?} names what was taken"
            );
            conflict.detail().to_owned()
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
}

pub(crate) async fn applications_crud_and_uid_conflicts(store: &dyn Store) {
    let acme = application(Some("acme"));
    store.create_application(&acme, None).await.unwrap();
    assert_eq!(
        store
            .get_application(&acme.id.clone().into())
            .await
            .unwrap(),
        Some(acme.clone())
    );
    assert_eq!(
        store.get_application(&Key::parse("acme")).await.unwrap(),
        Some(acme.clone())
    );
    assert_eq!(
        store.get_application(&Key::parse("nobody")).await.unwrap(),
        None
    );

    let twin = application(Some("acme"));
    assert_eq!(
        conflict(store.create_application(&twin, None).await),
        "an application with uid `acme` already exists"
    );
    // Applications without a uid never conflict with each other.
    let (first, second) = (application(None), application(None));
    store.create_application(&first, None).await.unwrap();
    store.create_application(&second, None).await.unwrap();

    let mut renamed = acme.clone();
    renamed.name = "Acme Inc".into();
    renamed.throttle_rate = Some(50);
    renamed.metadata.insert("region".into(), "eu".into());
    renamed.updated_at = now();
    store.update_application(&renamed).await.unwrap();
    assert_eq!(
        store.get_application(&Key::parse("acme")).await.unwrap(),
        Some(renamed)
    );

    let mut taking = first.clone();
    taking.uid = Some("acme".into());
    assert_eq!(
        conflict(store.update_application(&taking).await),
        "an application with uid `acme` already exists"
    );
    let ghost = application(Some("ghost"));
    assert!(matches!(
        store.update_application(&ghost).await,
        Err(StoreError::NotFound)
    ));

    assert!(store.delete_application(&acme.id).await.unwrap());
    assert_eq!(
        store.get_application(&Key::parse("acme")).await.unwrap(),
        None
    );
    assert!(!store.delete_application(&acme.id).await.unwrap());
    // The uid is free again.
    store.create_application(&twin, None).await.unwrap();
}

pub(crate) async fn deleting_an_application_deletes_what_it_holds(store: &dyn Store) {
    let app = application(None);
    store.create_application(&app, None).await.unwrap();
    let hook = endpoint(&app.id, Some("main"));
    store.create_endpoint(&hook, None).await.unwrap();
    let msg = message(&app.id, "user.created");
    assert_eq!(
        store.create_message(&msg, None, None).await.unwrap(),
        vec![hook.id.clone()]
    );

    assert!(store.delete_application(&app.id).await.unwrap());
    assert_eq!(
        store
            .get_endpoint(&app.id, &Key::parse("main"))
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .get_message(&app.id, &msg.id.clone().into())
            .await
            .unwrap(),
        None
    );
    assert_eq!(store.get_delivery(&msg.id, &hook.id).await.unwrap(), None);
    assert_eq!(store.queue_depth(now()).await.unwrap().due, 0);
}

pub(crate) async fn endpoints_crud_and_uid_conflicts(store: &dyn Store) {
    let (app, other_app) = (application(None), application(None));
    store.create_application(&app, None).await.unwrap();
    store.create_application(&other_app, None).await.unwrap();

    let mut main = endpoint(&app.id, Some("main"));
    main.event_types = vec!["user.created".into(), "user.deleted".into()];
    main.channels = vec!["eu".into()];
    main.retired_secrets = vec![RetiredSecret {
        secret: Secret::generate(),
        expires_at: now() + minutes(60),
    }];
    main.failing_since = Some(now() - minutes(5));
    store.create_endpoint(&main, None).await.unwrap();
    assert_eq!(
        store
            .get_endpoint(&app.id, &main.id.clone().into())
            .await
            .unwrap(),
        Some(main.clone())
    );
    assert_eq!(
        store
            .get_endpoint(&app.id, &Key::parse("main"))
            .await
            .unwrap(),
        Some(main.clone())
    );
    // Endpoints are found within their application only.
    assert_eq!(
        store
            .get_endpoint(&other_app.id, &Key::parse("main"))
            .await
            .unwrap(),
        None
    );

    assert_eq!(
        conflict(
            store
                .create_endpoint(&endpoint(&app.id, Some("main")), None)
                .await
        ),
        "an endpoint with uid `main` already exists"
    );
    store
        .create_endpoint(&endpoint(&other_app.id, Some("main")), None)
        .await
        .unwrap();

    let spare = endpoint(&app.id, None);
    store.create_endpoint(&spare, None).await.unwrap();
    let asked = [spare.id.clone(), EndpointId::new(), main.id.clone()];
    let found: Vec<EndpointId> = store
        .get_endpoints(&asked)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(found, vec![spare.id.clone(), main.id.clone()]);

    let mut changed = main.clone();
    changed.url = "https://example.org/other".into();
    changed.description = "the other one".into();
    changed.version = 2;
    changed.event_types.clear();
    changed.headers.insert("x-extra".into(), "1".into());
    changed.throttle_rate = None;
    changed.failing_since = None;
    changed.updated_at = now();
    store.update_endpoint(&changed).await.unwrap();
    assert_eq!(
        store
            .get_endpoint(&app.id, &Key::parse("main"))
            .await
            .unwrap(),
        Some(changed.clone())
    );

    let mut taking = spare.clone();
    taking.uid = Some("main".into());
    assert_eq!(
        conflict(store.update_endpoint(&taking).await),
        "an endpoint with uid `main` already exists"
    );
    let ghost = endpoint(&app.id, None);
    assert!(matches!(
        store.update_endpoint(&ghost).await,
        Err(StoreError::NotFound)
    ));
    // An endpoint is changed through its own application only.
    let mut stray = spare.clone();
    stray.app_id = other_app.id.clone();
    assert!(matches!(
        store.update_endpoint(&stray).await,
        Err(StoreError::NotFound)
    ));

    assert!(
        !store
            .delete_endpoint(&other_app.id, &main.id, now())
            .await
            .unwrap()
    );
    assert!(
        store
            .delete_endpoint(&app.id, &main.id, now())
            .await
            .unwrap()
    );
    assert_eq!(
        store
            .get_endpoint(&app.id, &Key::parse("main"))
            .await
            .unwrap(),
        None
    );
    assert!(
        !store
            .delete_endpoint(&app.id, &main.id, now())
            .await
            .unwrap()
    );
}

pub(crate) async fn event_types_archive_and_conflict(store: &dyn Store) {
    let created = event_type("user.created");
    store.create_event_type(&created, None).await.unwrap();
    store
        .create_event_type(&event_type("user.deleted"), None)
        .await
        .unwrap();
    assert_eq!(
        store.get_event_type("user.created").await.unwrap(),
        Some(created.clone())
    );
    assert_eq!(
        conflict(
            store
                .create_event_type(&event_type("user.created"), None)
                .await
        ),
        "an event type named `user.created` already exists"
    );

    assert!(
        store
            .delete_event_type("user.created", false, now())
            .await
            .unwrap()
    );
    let archived = store.get_event_type("user.created").await.unwrap().unwrap();
    assert!(archived.archived);
    let names = |page: webhookd_store::Page<webhookd_core::model::EventType>| {
        page.items.into_iter().map(|t| t.name).collect::<Vec<_>>()
    };
    let all = PageRequest::default();
    assert_eq!(
        names(store.list_event_types(&all, false).await.unwrap()),
        ["user.deleted"]
    );
    assert_eq!(
        names(store.list_event_types(&all, true).await.unwrap()),
        ["user.created", "user.deleted"]
    );

    // An archived type is replaced by a new one of that name.
    let mut again = event_type("user.created");
    again.description = "back again".into();
    again.schemas = None;
    store.create_event_type(&again, None).await.unwrap();
    let revived = store.get_event_type("user.created").await.unwrap().unwrap();
    assert!(!revived.archived);
    assert_eq!(revived.description, "back again");
    assert_eq!(revived.schemas, None);
    // The original creation time stays.
    assert_eq!(revived.created_at, created.created_at);

    let mut put = event_type("user.created");
    put.deprecated = true;
    store.put_event_type(&put).await.unwrap();
    assert!(
        store
            .get_event_type("user.created")
            .await
            .unwrap()
            .unwrap()
            .deprecated
    );
    store
        .put_event_type(&event_type("order.paid"))
        .await
        .unwrap();
    assert!(store.get_event_type("order.paid").await.unwrap().is_some());

    assert!(
        store
            .delete_event_type("user.created", true, now())
            .await
            .unwrap()
    );
    assert_eq!(store.get_event_type("user.created").await.unwrap(), None);
    assert!(
        !store
            .delete_event_type("user.created", true, now())
            .await
            .unwrap()
    );
    assert!(
        !store
            .delete_event_type("nothing", false, now())
            .await
            .unwrap()
    );
}

fn request(limit: usize, order: Order, cursor: Option<(&str, bool)>) -> PageRequest {
    PageRequest {
        limit,
        cursor: cursor.map(|(key, backward)| Cursor {
            key: key.into(),
            backward,
        }),
        order,
    }
}

pub(crate) async fn pages_go_forward_backward_and_descending(store: &dyn Store) {
    let mut ids = Vec::new();
    for _ in 0..5 {
        let app = application(None);
        store.create_application(&app, None).await.unwrap();
        ids.push(app.id.to_string());
    }
    let page = |request: PageRequest| async move {
        let page = store.list_applications(&request).await.unwrap();
        (
            page.items
                .into_iter()
                .map(|app| app.id.to_string())
                .collect::<Vec<_>>(),
            page.done,
        )
    };
    let id = |n: usize| ids[n].as_str();
    let expect =
        |ns: &[usize], done: bool| (ns.iter().map(|&n| ids[n].clone()).collect::<Vec<_>>(), done);

    use Order::{Ascending, Descending};
    assert_eq!(
        page(request(2, Ascending, None)).await,
        expect(&[0, 1], false)
    );
    assert_eq!(
        page(request(2, Ascending, Some((id(1), false)))).await,
        expect(&[2, 3], false)
    );
    assert_eq!(
        page(request(2, Ascending, Some((id(3), false)))).await,
        expect(&[4], true)
    );
    assert_eq!(
        page(request(5, Ascending, None)).await,
        expect(&[0, 1, 2, 3, 4], true)
    );
    assert_eq!(
        page(request(2, Ascending, Some((id(4), false)))).await,
        expect(&[], true)
    );
    // Backward pages come in the list's order, and are done at its start.
    assert_eq!(
        page(request(2, Ascending, Some((id(4), true)))).await,
        expect(&[2, 3], false)
    );
    assert_eq!(
        page(request(2, Ascending, Some((id(2), true)))).await,
        expect(&[0, 1], true)
    );
    // Newest first.
    assert_eq!(
        page(request(2, Descending, None)).await,
        expect(&[4, 3], false)
    );
    assert_eq!(
        page(request(2, Descending, Some((id(3), false)))).await,
        expect(&[2, 1], false)
    );
    assert_eq!(
        page(request(2, Descending, Some((id(1), false)))).await,
        expect(&[0], true)
    );
    assert_eq!(
        page(request(2, Descending, Some((id(0), true)))).await,
        expect(&[2, 1], false)
    );

    // Lists keyed by name page the same way, in byte order.
    for name in ["b.two", "a.one", "B.upper", "c.three"] {
        store
            .create_event_type(&event_type(name), None)
            .await
            .unwrap();
    }
    let names = |request: PageRequest| async move {
        let page = store.list_event_types(&request, false).await.unwrap();
        (
            page.items.into_iter().map(|t| t.name).collect::<Vec<_>>(),
            page.done,
        )
    };
    let strings = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
    assert_eq!(
        names(request(3, Ascending, None)).await,
        (strings(&["B.upper", "a.one", "b.two"]), false)
    );
    assert_eq!(
        names(request(3, Ascending, Some(("b.two", false)))).await,
        (strings(&["c.three"]), true)
    );
    assert_eq!(
        names(request(2, Descending, Some(("b.two", false)))).await,
        (strings(&["a.one", "B.upper"]), true)
    );
}

pub(crate) async fn endpoints_are_listed_across_applications(store: &dyn Store) {
    let (acme, globex) = (application(Some("acme")), application(Some("globex")));
    store.create_application(&acme, None).await.unwrap();
    store.create_application(&globex, None).await.unwrap();
    let mut created = Vec::new();
    for app in [&acme, &globex, &acme] {
        let endpoint = endpoint(&app.id, None);
        store.create_endpoint(&endpoint, None).await.unwrap();
        created.push(endpoint.id);
    }
    let first = PageRequest {
        limit: 2,
        cursor: None,
        order: Order::Ascending,
    };
    let page = store.list_all_endpoints(&first).await.unwrap();
    let ids: Vec<_> = page
        .items
        .iter()
        .map(|endpoint| endpoint.id.clone())
        .collect();
    assert_eq!(ids, created[..2]);
    assert!(!page.done);
    let next = PageRequest {
        cursor: Some(Cursor {
            key: ids[1].to_string(),
            backward: false,
        }),
        ..first.clone()
    };
    let page = store.list_all_endpoints(&next).await.unwrap();
    assert_eq!(page.items.len(), 1);
    assert_eq!(page.items[0].id, created[2]);
    assert_eq!(page.items[0].app_id, acme.id);
    assert!(page.done);
    let newest_first = PageRequest {
        order: Order::Descending,
        ..first
    };
    let page = store.list_all_endpoints(&newest_first).await.unwrap();
    assert_eq!(page.items[0].id, created[2]);
}

/// The suite's stores seal at rest: a sensitive header reads back as written, and nothing is
/// left unsealed.
pub(crate) async fn sensitive_headers_round_trip_sealed(store: &dyn Store) {
    let app = application(Some("acme"));
    store.create_application(&app, None).await.unwrap();
    let mut endpoint = endpoint(&app.id, None);
    endpoint.headers = [
        (
            "authorization".to_owned(),
            "Bearer sk-live-credential".to_owned(),
        ),
        ("x-team".to_owned(), "blue".to_owned()),
    ]
    .into();
    store.create_endpoint(&endpoint, None).await.unwrap();
    let read = store
        .get_endpoint(&app.id, &endpoint.id.clone().into())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(read.headers, endpoint.headers);
    let all = store
        .list_all_endpoints(&PageRequest {
            limit: 10,
            cursor: None,
            order: Order::Ascending,
        })
        .await
        .unwrap();
    assert_eq!(all.items[0].headers, endpoint.headers);
    assert_eq!(store.count_unsealed_endpoints().await.unwrap(), 0);
}
