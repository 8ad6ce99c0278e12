//! Delivering queued events: form-encoded POSTs to the handler URLs, recorded for tests.

use crate::state::{Outgoing, Shared};
use crate::Delivery;

/// POSTs each event (in order) and records the outcome. Called without the state lock.
pub(crate) async fn deliver(shared: &Shared, out: Vec<Outgoing>) -> Vec<Delivery> {
    let mut done = Vec::with_capacity(out.len());
    for o in out {
        let result = shared
            .http
            .post(&o.url)
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(o.body.clone())
            .send()
            .await;
        let (status, error) = match result {
            Ok(r) => {
                let status = r.status().as_u16();
                let _ = r.bytes().await;
                (Some(status), None)
            }
            Err(e) => (None, Some(e.to_string())),
        };
        let d = Delivery {
            event: o.event,
            url: o.url,
            body: o.body,
            status,
            error,
        };
        shared.lock().deliveries.push(d.clone());
        done.push(d);
    }
    done
}
