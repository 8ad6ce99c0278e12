//! The generated methods against the fake portal, over a webhook.

use bitrix24::{Client, Method};
use bitrix24_testkit::FakePortal;
use own_methods::mine::{DepartmentGet, MineMethods, ServerTime};
use own_methods::MyMethods;

#[tokio::test]
async fn own_methods_are_typed_and_use_the_shared_call_path() {
    let portal = FakePortal::builder().departments(7).start().await;
    let client = Client::webhook(portal.webhook_url(1)).unwrap();

    // Through the accessor trait...
    let now = client.mine().server_time().await.unwrap();
    assert!(now.timestamp() > 0);
    let depts: Vec<own_methods::types::Dept> = client.mine().department_get().await.unwrap();
    assert_eq!(depts.len(), 7);
    assert!(depts.iter().all(|d| d.id > 0 && d.name.is_some()));

    // ...or as plain requests, through `Client::call`.
    let children = client
        .call(&DepartmentGet::new().parent(depts[0].id))
        .await
        .unwrap();
    assert!(children.iter().all(|d| d.parent == Some(depts[0].id)));
    assert_eq!(<ServerTime as Method>::META.group, "mine");
    assert!(<DepartmentGet as Method>::META.list.is_some());
    // A list method of your own spec streams its items like the built-in ones.
    let _pages: bitrix24::ListStream<own_methods::types::Dept> =
        client.mine().department_get().stream();
    fn items_are_depts<M: bitrix24::ListMethod<Item = own_methods::types::Dept>>() {}
    items_are_depts::<DepartmentGet>();

    // The group type can also be made from a client directly.
    let group = MineMethods::from(&client);
    group.server_time().await.unwrap();
    assert!(portal.requests().len() >= 4);
}

#[test]
fn own_events_parse_into_their_variant() {
    use own_methods::events::Event;
    let body = b"event=ONCRMDEALADD&event_handler_id=3&data%5BFIELDS%5D%5BID%5D=42&ts=1700000000&auth%5Bdomain%5D=acme.bitrix24.com&auth%5Bapplication_token%5D=tok";
    match Event::parse("application/x-www-form-urlencoded", body).unwrap() {
        Event::DealAdd(e) => {
            assert_eq!(e.data.fields.id, 42);
            assert_eq!(e.event_handler_id, Some(3));
            assert_eq!(e.auth.unwrap().domain.as_deref(), Some("acme.bitrix24.com"));
        }
        other => panic!("{other:?}"),
    }
    let other = Event::parse("application/json", br#"{"event":"ONCRMLEADADD","data":{}}"#).unwrap();
    assert!(matches!(other, Event::Unknown(u) if u.event == "ONCRMLEADADD"));
}
