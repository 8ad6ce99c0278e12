//! A chat bot end to end: an HTTP server that receives Bitrix24 events, verifies them,
//! keeps the app's installations, and answers users with data from the CRM.
//!
//! ```sh
//! cargo run --example echo_bot
//! ```
//!
//! With no configuration it starts a fake portal in this process (`bitrix24-testkit`),
//! installs the app there (the bot server receives a real `ONAPPINSTALL` POST and stores the
//! installation), registers the bot, lets a simulated user talk to it, expires the access
//! token half-way, and prints the conversation as the portal recorded it.
//!
//! Against a real portal, set all of:
//! - `B24_CLIENT_ID`, `B24_CLIENT_SECRET`: the local application's credentials;
//! - `B24_HANDLER_URL`: the public `https` URL at which this process is reachable, set as
//!   the application's handler and installation URL (e.g. through a tunnel);
//! - `B24_LISTEN` (optional, default `0.0.0.0:8080`): where to listen.
//!
//! Then install the app on the portal: the bot registers itself and answers until stopped.
#![allow(deprecated)] // the classic imbot.* methods (the ONIMBOT* events family) are deprecated upstream

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::extract::{FromRef, State};
use axum::{http::StatusCode, routing::post, Router};
use bitrix24::axum::VerifiedEvent;
use bitrix24::events::{Event, EventOf};
use bitrix24::types::{BotProperties, ImbotMessageAddData};
use bitrix24::{
    Client, ClientPool, Installation, InstallationStore, MemoryInstallationStore, OAuthApp,
};
use bitrix24_testkit::{AppSpec, FakePortal};
use tokio::sync::mpsc;

/// What the bot server shares between requests.
#[derive(Clone)]
struct Bot {
    store: Arc<dyn InstallationStore>,
    /// One client per portal, made from the stored installations: events for one portal
    /// share its token refresh and its rate limit. Set once the app's credentials are known
    /// (a real app knows them up front; the fake portal issues them while installing, after
    /// the bot server is already listening).
    pool: Arc<OnceLock<ClientPool>>,
    /// Announces each new installation (its `member_id`) to `main`.
    installed: mpsc::UnboundedSender<String>,
}

impl FromRef<Bot> for Arc<dyn InstallationStore> {
    fn from_ref(bot: &Bot) -> Self {
        bot.store.clone()
    }
}

impl Bot {
    fn client(&self, installation: &Installation) -> Result<bitrix24::Client, bitrix24::Error> {
        self.pool
            .get()
            .expect("credentials are set before users talk")
            .client_for(installation)
    }
}

/// The event endpoint: only verified events get here. Answers 200 at once and works in the
/// background (Bitrix24 does not wait, nor retry); failures are logged, not bounced.
async fn on_event(State(bot): State<Bot>, verified: VerifiedEvent) -> StatusCode {
    let VerifiedEvent {
        event,
        installation,
        ..
    } = verified;
    match event {
        Event::AppInstall(_) => {
            let _ = bot.installed.send(installation.member_id.clone());
        }
        Event::ImbotMessageAdd(message) => {
            tokio::spawn(async move {
                if let Err(e) = answer(&bot, &installation, message).await {
                    eprintln!("bot: could not answer: {e}"); // never contains a token
                }
            });
        }
        _ => {}
    }
    StatusCode::OK
}

/// How many contacts a reply names.
const SHOWN: usize = 5;

/// The reply to a search: how many contacts match `text` (the portal's `total`, not the
/// length of one page) and the first few.
async fn contact_reply(client: &Client, text: &str) -> Result<String, bitrix24::Error> {
    // Contacts are CRM items of entity type 3 (crm.item.list; camelCase field names). One
    // page is enough to show a few; its `total` counts them all.
    let page = client
        .crm()
        .item_list(3)
        .filter(serde_json::json!({ "%name": text }))
        .select(["id", "name", "lastName"])
        .order([("id", "ASC")])
        .send_with_meta()
        .await?;
    let contacts = page.result.items;
    // `total` is absent only when the portal did not count; then the page and whether
    // another follows are all there is to say.
    let (count, at_least) = match page.total {
        Some(total) => (total.max(contacts.len() as u64), false),
        None => (contacts.len() as u64, page.next.is_some()),
    };
    let found: Vec<String> = contacts
        .iter()
        .take(SHOWN)
        .map(|c| {
            let first = c.name.as_deref().unwrap_or("");
            let last = c.last_name.as_deref().unwrap_or("");
            format!("{first} {last} (ID {})", c.id)
        })
        .collect();
    let count_text = if at_least {
        format!("at least {count}")
    } else {
        count.to_string()
    };
    Ok(match count {
        0 => format!("No contacts named {text:?}"),
        n if n > found.len() as u64 => format!(
            "Found {count_text} contacts: {} and {} more",
            found.join(", "),
            n - found.len() as u64
        ),
        _ => format!("Found {count_text} contacts: {}", found.join(", ")),
    })
}

/// Answers one message: a prompt to a greeting, CRM contacts matching anything else.
async fn answer(
    bot: &Bot,
    installation: &Installation,
    message: EventOf<ImbotMessageAddData>,
) -> Result<(), bitrix24::Error> {
    let client = bot.client(installation)?;
    let params = &message.data.params;
    let (Some(dialog_id), Some(text)) = (params.dialog_id.as_deref(), params.message.as_deref())
    else {
        return Ok(());
    };
    let text = text.trim();
    let reply = if ["hello", "hi", "hey", "start", "/start"].contains(&text.to_lowercase().as_str())
    {
        "Enter search string".to_owned()
    } else {
        contact_reply(&client, text).await?
    };
    // Every bot of this app that received the message answers (here: the one).
    for bot_id in message
        .data
        .bot
        .keys()
        .filter_map(|id| id.parse::<u64>().ok())
    {
        client
            .imbot()
            .message_add(reply.as_str())
            .dialog_id(dialog_id)
            .bot_id(bot_id)
            .await?;
    }
    Ok(())
}

/// Starts the bot server on `listen`; returns its bound address.
async fn serve(bot: Bot, listen: &str) -> std::io::Result<std::net::SocketAddr> {
    let router = Router::new()
        .route("/bitrix24", post(on_event))
        .with_state(bot);
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, router).await });
    Ok(addr)
}

/// Registers the bot for the installation of `member_id`, with `handler_url` for its events.
async fn register(
    bot: &Bot,
    member_id: &str,
    handler_url: &str,
) -> Result<u64, Box<dyn std::error::Error + Send + Sync>> {
    let installation = bot
        .store
        .get(member_id)
        .await?
        .ok_or("installation not stored")?;
    let client = bot.client(&installation)?;
    let properties = BotProperties::new()
        .name("Contact finder")
        .work_position("Searches the CRM");
    Ok(client
        .imbot()
        .register("contact_finder", properties)
        .event_handler(handler_url)
        .await?)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let (installed, mut installs) = mpsc::unbounded_channel();
    let bot = Bot {
        store: Arc::new(MemoryInstallationStore::new()),
        pool: Arc::new(OnceLock::new()),
        installed,
    };

    if let (Ok(id), Ok(secret), Ok(url)) = (
        std::env::var("B24_CLIENT_ID"),
        std::env::var("B24_CLIENT_SECRET"),
        std::env::var("B24_HANDLER_URL"),
    ) {
        // A real portal: serve until stopped, registering the bot on every install.
        let _ = bot.pool.set(ClientPool::new(
            OAuthApp::new(id, secret),
            bot.store.clone(),
        ));
        let listen = std::env::var("B24_LISTEN").unwrap_or_else(|_| "0.0.0.0:8080".into());
        let addr = serve(bot.clone(), &listen).await?;
        println!("listening on {addr}; install the app with handler URL {url}");
        while let Some(member_id) = installs.recv().await {
            match register(&bot, &member_id, &url).await {
                Ok(id) => println!("installed on {member_id}: bot {id} registered"),
                Err(e) => eprintln!("installed on {member_id}: bot registration failed: {e}"),
            }
        }
        return Ok(());
    }
    let real = [
        "B24_CLIENT_ID",
        "B24_CLIENT_SECRET",
        "B24_HANDLER_URL",
        "B24_LISTEN",
    ];
    if real.iter().any(|k| std::env::var_os(k).is_some()) {
        return Err(
            "a real portal needs all of B24_CLIENT_ID, B24_CLIENT_SECRET and \
                    B24_HANDLER_URL (B24_LISTEN optional); unset them to use the fake portal"
                .into(),
        );
    }
    println!("(no B24_CLIENT_ID etc. set: running against a fake portal in this process)\n");

    // 1. A fake portal, and the bot server.
    let portal = FakePortal::start().await;
    let oauth_server = portal
        .oauth_token_url()
        .trim_end_matches("/oauth/token/")
        .to_owned();
    let handler_url = format!(
        "http://{}/bitrix24",
        serve(bot.clone(), "127.0.0.1:0").await?
    );

    // 2. Install the app: the portal POSTs ONAPPINSTALL, the server verifies and stores it.
    let app = portal
        .install_app(AppSpec::new().handler_url(&handler_url))
        .await;
    let _ = bot.pool.set(
        ClientPool::builder(app.app.clone(), bot.store.clone())
            .oauth_server(oauth_server)
            .build(),
    );
    let member_id = installs.recv().await.ok_or("no ONAPPINSTALL received")?;
    println!("installed on portal {member_id}");

    // 3. Register the bot with the stored installation's tokens.
    let bot_id = register(&bot, &member_id, &handler_url).await?;
    println!("bot {bot_id} registered\n");

    // 4. A user talks to it; the access token expires half-way.
    let user = 3;
    let dialog = bot_id.to_string();
    let mut expired_after = 0;
    for (i, text) in ["hello", "Anna"].into_iter().enumerate() {
        if i == 1 {
            portal.expire_tokens();
            expired_after = portal.messages(&dialog).len();
        }
        let before = portal.messages(&dialog).len();
        portal.user_says(user, &dialog, text).await;
        wait_for_reply(&portal, &dialog, before + 2).await?;
    }

    // 5. The conversation, as the portal recorded it.
    for (i, m) in portal.messages(&dialog).iter().enumerate() {
        if i == expired_after && expired_after > 0 {
            println!("(access token expired on the portal)");
        }
        if m.author_id == bot_id {
            println!("bot -> user {user}: {}", m.text);
        } else {
            println!("user {} -> bot: {}", m.author_id, m.text);
        }
    }
    let refreshes = portal
        .token_requests()
        .iter()
        .filter(|t| t.grant_type == "refresh_token")
        .count();
    println!("\nrefreshes: {refreshes}");
    Ok(())
}

/// Waits until `dialog` holds `count` messages (the bot answers in the background).
async fn wait_for_reply(
    portal: &FakePortal,
    dialog: &str,
    count: usize,
) -> Result<(), &'static str> {
    for _ in 0..500 {
        if portal.messages(dialog).len() >= count {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Err("the bot did not answer within 5 s")
}

#[cfg(test)]
mod tests {
    use super::*;
    use bitrix24::crm::CrmContactAdd;
    use bitrix24::types::CrmContactAddFields;
    use bitrix24::RateLimit;

    #[tokio::test]
    async fn the_reply_counts_every_match_not_one_page() {
        let portal = FakePortal::builder().rate_limit_off().start().await;
        let client = Client::builder()
            .webhook(portal.webhook_url(1))
            .rate_limit(RateLimit::off())
            .build()
            .unwrap();
        let adds = (0..319).map(|i| {
            CrmContactAdd::new().fields(
                CrmContactAddFields::new()
                    .name("Zoe")
                    .last_name(format!("N{i}")),
            )
        });
        for r in client.call_many(adds).results().await {
            r.unwrap();
        }
        let reply = contact_reply(&client, "Zoe").await.unwrap();
        assert!(
            reply.starts_with("Found 319 contacts: Zoe N0 (ID "),
            "{reply}"
        );
        assert!(reply.ends_with(" and 314 more"), "{reply}");
        client
            .crm()
            .contact_add()
            .fields(CrmContactAddFields::new().name("Uma").last_name("Single"))
            .await
            .unwrap();
        let one = contact_reply(&client, "Uma").await.unwrap();
        assert!(
            one.starts_with("Found 1 contacts: Uma Single (ID "),
            "{one}"
        );
        assert!(!one.contains("more"), "{one}");
        assert_eq!(
            contact_reply(&client, "nobody").await.unwrap(),
            "No contacts named \"nobody\""
        );
    }
}
