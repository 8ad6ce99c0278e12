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

    // The group type can also be made from a client directly.
    let group = MineMethods::from(&client);
    group.server_time().await.unwrap();
    assert!(portal.requests().len() >= 4);
}
