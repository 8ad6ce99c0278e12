//! The trait every generated request implements, and the metadata each method carries.

use crate::params::Params;
use crate::wire::FromWire;

/// A Bitrix24 REST method call: a request value holding the method's parameters.
///
/// Generated request types (`bitrix24::crm::CrmDealAdd`, ...) implement it; everything else
/// (sending, auth, refresh, error classification, decoding) is shared runtime code behind
/// [`Client::call`](crate::Client::call). Implement it for a request type of your own to call
/// a method the spec does not have (or generate such types from your own spec with
/// `bitrix24-codegen`, see the README); [`Client::call_raw`](crate::Client::call_raw) needs
/// no type at all.
///
/// ```
/// use bitrix24::{Access, Arg, Method, MethodMeta, Params};
///
/// struct ServerTime(Params);
///
/// impl Method for ServerTime {
///     const META: &'static MethodMeta = &MethodMeta::new("server.time", Access::Read).group("server");
///     type Output = String;
///     fn wire_params(&self) -> &Params {
///         &self.0
///     }
/// }
/// # let _ = ServerTime(Params::new());
/// ```
pub trait Method {
    /// What the method is: wire name, read or write, docs, list model...
    const META: &'static MethodMeta;
    /// The decoded `result`.
    type Output: FromWire;
    /// The parameters to send (never `auth`: the client adds it). Named so that it cannot
    /// collide with a setter generated for a wire param called `params`.
    fn wire_params(&self) -> &Params;
}

/// Whether a method changes the portal: this decides what may be retried.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Access {
    /// Reads only: sending it twice is harmless.
    Read,
    /// Changes data (`*.add`, `*.update`, `*.delete`, `*.send`...): never re-sent unless the
    /// portal certainly did not run it.
    Write,
    /// Reads, but changes state while doing so (`event.offline.get` clears the events it
    /// returns): treated like a write.
    ReadWithEffects,
}

impl Access {
    /// Whether a request of this access is harmless to send twice.
    pub const fn is_idempotent(self) -> bool {
        matches!(self, Access::Read)
    }
}

/// How a JSON `true`/`false` parameter is written in a PHP query string (the commands of a
/// `batch`, [PROTOCOL 2.3](https://apidocs.bitrix24.com/settings/how-to-call-rest-api/data-encoding.html)),
/// where PHP receives every value as a string.
///
/// Parameters of spec type `yn` are `"Y"`/`"N"` strings already and are not affected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BoolForm {
    /// `1` / `0`, as PHP's `http_build_query` (and so the official PHP SDK) writes them.
    /// PHP reads `"0"` as false and `"1"` as true, so truthiness checks see the same value
    /// as from a JSON body. The default.
    OneZero,
    /// `Y` / `N`, for methods whose docs accept the flag strings in place of JSON booleans
    /// (chat-bots 2.0, `imbot.v2.*`).
    YesNo,
}

/// A list method: one whose `result` is a page of items (PROTOCOL 6). Generated for every
/// method with list metadata ([`MethodMeta::list`]); it gives `.stream()` and
/// `.collect_all()`.
pub trait ListMethod: Method {
    /// One item of a page, as decoded from the item list in `result`
    /// ([`ListModel::items`]).
    type Item: FromWire;
}

/// Which generation of the REST API a method belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ApiVersion {
    /// Classic REST (`/rest/{method}`), `start`/`next`/`total` paging.
    V2,
    /// REST 3.0 (`/rest/api/{method}`).
    V3,
}

/// How a list method pages, per method (PROTOCOL.md 6): where the items sit in `result`, the
/// id field, and the wire names of its paging parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ListModel {
    /// The key of the item list in `result` (`items`, `tasks`), or `""` when `result` is the
    /// list itself (`crm.deal.list`).
    pub items: &'static str,
    /// The id field in `filter`/`order` of requests (`ID`, `id`).
    pub id: &'static str,
    /// The id field in the items of answers (`id` for `tasks.task.list`).
    pub answer_id: &'static str,
    /// Whether `start = -1` with an `>ID` filter works (a fast full scan without counting).
    pub fast_scan: bool,
    /// Wire name of the filter parameter (`filter`, `FILTER`).
    pub filter: &'static str,
    /// Wire name of the order parameter.
    pub order: &'static str,
    /// Wire name of the select parameter (`""` when the method has none).
    pub select: &'static str,
    /// Wire name of the offset parameter (`start`).
    pub start: &'static str,
}

impl ListModel {
    /// A list whose items are at `items` (`""`: `result` itself), id `ID`, paging parameters
    /// `filter`, `order`, `select`, `start`.
    pub const fn new(items: &'static str) -> ListModel {
        ListModel {
            items,
            id: "ID",
            answer_id: "ID",
            fast_scan: false,
            filter: "filter",
            order: "order",
            select: "select",
            start: "start",
        }
    }

    /// The id field, in requests and answers alike.
    pub const fn id(mut self, id: &'static str) -> ListModel {
        self.id = id;
        self.answer_id = id;
        self
    }

    /// The id field in answers, when it differs from requests.
    pub const fn answer_id(mut self, id: &'static str) -> ListModel {
        self.answer_id = id;
        self
    }

    /// Marks fast full scans (`start = -1`) as supported.
    pub const fn fast_scan(mut self, yes: bool) -> ListModel {
        self.fast_scan = yes;
        self
    }

    /// Wire names of the filter, order, select and start parameters.
    pub const fn keys(
        mut self,
        filter: &'static str,
        order: &'static str,
        select: &'static str,
        start: &'static str,
    ) -> ListModel {
        self.filter = filter;
        self.order = order;
        self.select = select;
        self.start = start;
        self
    }
}

/// Everything the runtime (and tools built on the spec) know about one method, as one
/// constant: [`Method::META`]. Build one with [`MethodMeta::new`] and its `const` setters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct MethodMeta {
    /// The wire name, verbatim (`crm.deal.add`, `imbot.v2.Chat.Message.send`).
    pub name: &'static str,
    /// The group (first segment of the name, `basic` for names without a dot): the client
    /// accessor (`client.crm()`) and the Cargo feature.
    pub group: &'static str,
    /// The OAuth scope the docs name (`crm`, `im`, `task`...), `""` if none.
    pub scope: &'static str,
    /// Read, write, or read with effects.
    pub access: Access,
    /// Classic REST or REST 3.0.
    pub api: ApiVersion,
    /// The official docs page, `""` if unknown.
    pub docs: &'static str,
    /// `Some(successor or note)` when Bitrix24 deprecated the method.
    pub deprecated: Option<&'static str>,
    /// Whether it may run inside `batch` (not `batch` itself, nor file uploads).
    pub batch: bool,
    /// For list methods: how they page.
    pub list: Option<ListModel>,
    /// Conditional requirements: besides the required parameters, at least one of these
    /// groups of parameters must be set entirely (empty: none). `imbot.message.add` needs
    /// `DIALOG_ID`, or `FROM_USER_ID` with `TO_USER_ID`.
    pub requires: &'static [&'static [&'static str]],
    /// How JSON booleans travel when this method runs inside `batch`, where parameters are a
    /// PHP query string and have no boolean type.
    pub query_bool: BoolForm,
}

impl MethodMeta {
    /// A classic (v2) method that may run in a batch; set the rest with the other `const`
    /// setters ([`group`](Self::group), [`docs`](Self::docs), ...).
    pub const fn new(name: &'static str, access: Access) -> MethodMeta {
        MethodMeta {
            name,
            group: "",
            scope: "",
            access,
            api: ApiVersion::V2,
            docs: "",
            deprecated: None,
            batch: true,
            list: None,
            requires: &[],
            query_bool: BoolForm::OneZero,
        }
    }

    /// The group.
    pub const fn group(mut self, group: &'static str) -> MethodMeta {
        self.group = group;
        self
    }

    /// The OAuth scope.
    pub const fn scope(mut self, scope: &'static str) -> MethodMeta {
        self.scope = scope;
        self
    }

    /// The API generation.
    pub const fn api(mut self, api: ApiVersion) -> MethodMeta {
        self.api = api;
        self
    }

    /// The docs page.
    pub const fn docs(mut self, url: &'static str) -> MethodMeta {
        self.docs = url;
        self
    }

    /// Deprecated, with the successor's name or a note.
    pub const fn deprecated(mut self, note: &'static str) -> MethodMeta {
        self.deprecated = Some(note);
        self
    }

    /// Whether it may run inside `batch`.
    pub const fn batch(mut self, allowed: bool) -> MethodMeta {
        self.batch = allowed;
        self
    }

    /// The list model of a list method.
    pub const fn list(mut self, list: ListModel) -> MethodMeta {
        self.list = Some(list);
        self
    }

    /// How booleans travel inside `batch` (see [`BoolForm`]).
    pub const fn query_bool(mut self, form: BoolForm) -> MethodMeta {
        self.query_bool = form;
        self
    }

    /// Conditional requirements (see [`requires`](Self#structfield.requires)).
    pub const fn requires(mut self, groups: &'static [&'static [&'static str]]) -> MethodMeta {
        self.requires = groups;
        self
    }

    /// Checks the conditional requirements against the parameters about to be sent. A
    /// parameter counts when it holds a value: `null`, `""`, `[]` and `{}` are what the portal
    /// reads as missing (`DIALOG_ID_EMPTY`), so they do not.
    ///
    /// # Errors
    /// A message naming the alternatives when no group is fully set.
    pub fn check(&self, params: &Params) -> Result<(), String> {
        let filled = |name: &str| match params.get(name) {
            None | Some(serde_json::Value::Null) => false,
            Some(serde_json::Value::String(s)) => !s.is_empty(),
            Some(serde_json::Value::Array(a)) => !a.is_empty(),
            Some(serde_json::Value::Object(o)) => !o.is_empty(),
            Some(_) => true,
        };
        if self.requires.is_empty()
            || self
                .requires
                .iter()
                .any(|group| group.iter().all(|name| filled(name)))
        {
            return Ok(());
        }
        let alternatives: Vec<String> = self
            .requires
            .iter()
            .map(|group| group.join(" with "))
            .collect();
        let mut message = format!("needs {}", alternatives.join(", or "));
        // A group set in part: say what it lacks.
        if let Some(group) = self
            .requires
            .iter()
            .find(|g| g.len() > 1 && g.iter().any(|n| params.is_set(n)))
        {
            let missing: Vec<&str> = group
                .iter()
                .copied()
                .filter(|n| !params.is_set(n))
                .collect();
            message.push_str(&format!(" ({} is not set)", missing.join(", ")));
        }
        Err(message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::{Arg, IntoArg};

    const SEND: &MethodMeta = &MethodMeta::new("imbot.message.add", Access::Write)
        .group("imbot")
        .requires(&[&["DIALOG_ID"], &["FROM_USER_ID", "TO_USER_ID"]]);

    #[test]
    fn conditional_requirements() {
        let p = Params::new().with("MESSAGE", IntoArg::<String>::into_arg("hi"));
        assert_eq!(
            SEND.check(&p).unwrap_err(),
            "needs DIALOG_ID, or FROM_USER_ID with TO_USER_ID"
        );
        let half = p.clone().with("FROM_USER_ID", Arg::new(1.into()));
        assert_eq!(
            SEND.check(&half).unwrap_err(),
            "needs DIALOG_ID, or FROM_USER_ID with TO_USER_ID (TO_USER_ID is not set)"
        );
        let both = half.with("TO_USER_ID", Arg::new(2.into()));
        assert!(SEND.check(&both).is_ok());
        let dialog = p.with("DIALOG_ID", IntoArg::<String>::into_arg("chat1"));
        assert!(SEND.check(&dialog).is_ok());
    }

    #[test]
    fn empty_values_do_not_meet_a_requirement() {
        // The portal reads `""`, `[]` and `{}` as missing (`DIALOG_ID_EMPTY`): refused here,
        // before anything is sent.
        for empty in [
            serde_json::json!(""),
            serde_json::json!([]),
            serde_json::json!({}),
        ] {
            let p = Params::new().with("DIALOG_ID", Arg::new(empty.clone()));
            assert!(SEND.check(&p).is_err(), "{empty}");
        }
        let p = Params::new().with("DIALOG_ID", Arg::new(serde_json::Value::Null));
        assert!(SEND.check(&p).is_err());
        let mut p = Params::new().with("DIALOG_ID", IntoArg::<String>::into_arg("chat1"));
        assert!(SEND.check(&p).is_ok());
        p.remove("DIALOG_ID");
        assert!(SEND.check(&p).is_err(), "set, then removed");
        let zero = Params::new()
            .with("FROM_USER_ID", Arg::new(0.into()))
            .with("TO_USER_ID", Arg::new(2.into()));
        assert!(
            SEND.check(&zero).is_ok(),
            "numbers are values; the portal judges them"
        );
    }

    #[test]
    fn only_reads_are_idempotent() {
        assert!(Access::Read.is_idempotent());
        assert!(!Access::Write.is_idempotent());
        assert!(!Access::ReadWithEffects.is_idempotent());
    }
}
