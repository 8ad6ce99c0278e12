//! What the list methods share: which fields a filter or `order` may name, the errors for
//! one that names no field, the configured quirks, the simulated cost of a page, and
//! `total`/`next`.

use bitrix24::codes;
use serde_json::Value;

use super::{ApiError, Ctx};
use crate::store::{self, Kind, Query, QueryError, Record};

/// Fields of each entity a real portal knows beyond the ones the fake stores (so filtering on
/// them is allowed and matches an empty value): the field lists of
/// EN:api-reference/crm/{contacts,deals,leads,companies}/crm-*-fields.md,
/// tasks/tasks-task-list.md (filter and order) and user/user-add.md, user-get.md.
#[rustfmt::skip]
const CONTACT: &[&str] = &[
    "HONORIFIC", "PHOTO", "BIRTHDATE", "SOURCE_DESCRIPTION", "ADDRESS", "ADDRESS_2",
    "ADDRESS_CITY", "ADDRESS_POSTAL_CODE", "ADDRESS_REGION", "ADDRESS_PROVINCE",
    "ADDRESS_COUNTRY", "ADDRESS_COUNTRY_CODE", "ADDRESS_LOC_ADDR_ID", "COMPANY_IDS", "LEAD_ID",
    "ORIGINATOR_ID", "ORIGIN_ID", "ORIGIN_VERSION", "UTM_SOURCE", "UTM_MEDIUM", "UTM_CAMPAIGN",
    "UTM_CONTENT", "UTM_TERM", "LAST_ACTIVITY_TIME", "LAST_ACTIVITY_BY", "WEB", "IM", "LINK",
];
#[rustfmt::skip]
const DEAL: &[&str] = &[
    "ADDITIONAL_INFO", "BEGINDATE", "CLOSEDATE", "CONTACT_IDS", "IS_MANUAL_OPPORTUNITY",
    "IS_NEW", "IS_RECURRING", "IS_REPEATED_APPROACH", "IS_RETURN_CUSTOMER", "LAST_ACTIVITY_BY",
    "LAST_ACTIVITY_TIME", "LEAD_ID", "LOCATION_ID", "MODIFY_BY_ID", "MOVED_BY_ID", "MOVED_TIME",
    "ORIGINATOR_ID", "ORIGIN_ID", "PROBABILITY", "QUOTE_ID", "SOURCE_DESCRIPTION", "SOURCE_ID",
    "STAGE_SEMANTIC_ID", "TAX_VALUE", "UTM_CAMPAIGN", "UTM_CONTENT", "UTM_MEDIUM", "UTM_SOURCE",
    "UTM_TERM",
];
#[rustfmt::skip]
const LEAD: &[&str] = &[
    "HONORIFIC", "SECOND_NAME", "BIRTHDATE", "COMPANY_TITLE", "SOURCE_DESCRIPTION",
    "STATUS_DESCRIPTION", "STATUS_SEMANTIC_ID", "POST", "ADDRESS", "ADDRESS_2", "ADDRESS_CITY",
    "ADDRESS_POSTAL_CODE", "ADDRESS_REGION", "ADDRESS_PROVINCE", "ADDRESS_COUNTRY",
    "ADDRESS_COUNTRY_CODE", "ADDRESS_LOC_ADDR_ID", "IS_MANUAL_OPPORTUNITY", "COMMENTS",
    "HAS_IMOL", "CREATED_BY_ID", "MODIFY_BY_ID", "MOVED_BY_ID", "MOVED_TIME", "COMPANY_ID",
    "CONTACT_ID", "IS_RETURN_CUSTOMER", "DATE_CLOSED", "ORIGINATOR_ID", "ORIGIN_ID",
    "UTM_SOURCE", "UTM_MEDIUM", "UTM_CAMPAIGN", "UTM_CONTENT", "UTM_TERM", "LAST_ACTIVITY_TIME",
    "LAST_ACTIVITY_BY", "PHONE", "EMAIL", "WEB", "IM", "LINK",
];
#[rustfmt::skip]
const COMPANY: &[&str] = &[
    "LOGO", "ADDRESS", "BANKING_DETAILS", "EMPLOYEES", "COMMENTS", "HAS_IMOL", "IS_MY_COMPANY",
    "CREATED_BY_ID", "MODIFY_BY_ID", "CONTACT_ID", "LEAD_ID", "ORIGINATOR_ID", "ORIGIN_ID",
    "ORIGIN_VERSION", "UTM_SOURCE", "UTM_MEDIUM", "UTM_CAMPAIGN", "UTM_CONTENT", "UTM_TERM",
    "LAST_ACTIVITY_TIME", "LAST_ACTIVITY_BY", "LAST_COMMUNICATION_TIME", "PHONE", "EMAIL",
    "WEB", "IM", "LINK",
];
#[rustfmt::skip]
const TASK_FILTER: &[&str] = &[
    "PARENT_ID", "STATUS_CHANGED_BY", "FORUM_TOPIC_ID", "TAG", "REAL_STATUS", "MARK", "SITE_ID",
    "ADD_IN_REPORT", "DATE_START", "CLOSED_DATE", "ACCOMPLICE", "AUDITOR", "DEPENDS_ON",
    "ONLY_ROOT_TASKS", "STAGE_ID", "SPRINT_ID", "BACKLOG_ID", "UF_CRM_TASK",
];
#[rustfmt::skip]
const TASK_ORDER: &[&str] = &[
    "ID", "TITLE", "TIME_SPENT_IN_LOGS", "DATE_START", "CREATED_DATE", "CHANGED_DATE",
    "CLOSED_DATE", "ACTIVITY_DATE", "START_DATE_PLAN", "END_DATE_PLAN", "DEADLINE",
    "REAL_STATUS", "STATUS_COMPLETE", "PRIORITY", "MARK", "CREATED_BY_LAST_NAME",
    "RESPONSIBLE_LAST_NAME", "GROUP_ID", "TIME_ESTIMATE", "ALLOW_CHANGE_DEADLINE",
    "ALLOW_TIME_TRACKING", "MATCH_WORK_TIME", "FAVORITE", "SORTING", "IS_PINNED",
    "IS_PINNED_IN_GROUP",
];
#[rustfmt::skip]
const USER: &[&str] = &[
    "PERSONAL_PROFESSION", "PERSONAL_WWW", "PERSONAL_PHOTO", "PERSONAL_ICQ", "PERSONAL_PHONE",
    "PERSONAL_FAX", "PERSONAL_MOBILE", "PERSONAL_PAGER", "PERSONAL_STREET", "PERSONAL_CITY",
    "PERSONAL_STATE", "PERSONAL_ZIP", "PERSONAL_COUNTRY", "PERSONAL_MAILBOX", "PERSONAL_NOTES",
    "WORK_COMPANY", "WORK_DEPARTMENT", "WORK_WWW", "WORK_FAX", "WORK_PAGER", "WORK_STREET",
    "WORK_MAILBOX", "WORK_CITY", "WORK_STATE", "WORK_ZIP", "WORK_COUNTRY", "WORK_PROFILE",
    "WORK_LOGO", "WORK_NOTES", "UF_SKYPE_LINK", "UF_ZOOM", "UF_INTERESTS", "UF_SKILLS",
    "UF_WEB_SITES", "UF_XING", "UF_LINKEDIN", "UF_FACEBOOK", "UF_TWITTER", "UF_SKYPE",
    "UF_DISTRICT", "UF_PHONE_INNER", "UF_EMPLOYMENT_DATE", "NAME_SEARCH",
];

fn documented(kind: Kind) -> &'static [&'static str] {
    match kind {
        Kind::Contact => CONTACT,
        Kind::Deal => DEAL,
        Kind::Lead => LEAD,
        Kind::Company => COMPANY,
        Kind::Task => TASK_FILTER,
        Kind::User => USER,
        Kind::Department => &[],
    }
}

/// Whether `field` (the record's upper-case name) is a field of `kind`: one the fake stores
/// (`crm.<entity>.fields`), or one the docs list for it.
pub(crate) fn known(ctx: &Ctx<'_>, kind: Kind, field: &str) -> bool {
    // Record 2 has every field (department 1, the root, has no PARENT).
    store::generate(kind, 2, &ctx.cfg.gen).contains_key(field) || documented(kind).contains(&field)
}

/// Whether a task may be sorted on `field`: the documented sort keys, and `ID`.
pub(crate) fn task_sortable(field: &str) -> bool {
    TASK_ORDER.contains(&field)
}

/// How a list method answers a [`QueryError`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Dialect {
    /// `400 INVALID_ARG_VALUE` `Invalid filter: field 'X' is not allowed in filter` (the text
    /// of EN:api-reference/crm/universal/crm-item-list.md; classic CRM lists, `user.get` and
    /// `department.get` answer the same here, which their pages do not document).
    Crm,
    /// Filters as [`Dialect::Crm`]; an unknown `order` key is `400`
    /// `{"error":"0","error_description":"Invalid sorting key (internal error)"}`
    /// (EN:api-reference/tasks/tasks-task-list.md).
    Tasks,
}

pub(crate) fn query_error(dialect: Dialect, e: QueryError) -> ApiError {
    match e {
        QueryError::Filter(f) => ApiError::new(
            codes::INVALID_ARG_VALUE,
            format!("Invalid filter: field '{f}' is not allowed in filter"),
        ),
        QueryError::Order(_) if dialect == Dialect::Tasks => {
            ApiError::new("0", "Invalid sorting key (internal error)")
        }
        QueryError::Order(f) => ApiError::new(
            codes::INVALID_ARG_VALUE,
            format!("Invalid order: field '{f}' is not allowed in order"),
        ),
        QueryError::Direction { field, direction } => ApiError::new(
            codes::INVALID_ARG_VALUE,
            format!(
                "Invalid order: allowed sort directions are ASC, DESC. But got '{direction}' for field '{field}'"
            ),
        ),
    }
}

/// A page as the method found it, before shaping.
pub(crate) struct Listed {
    pub records: Vec<Record>,
    pub total: Option<u64>,
    pub next: Option<u64>,
}

/// Runs `q` on `kind`'s table as the current method: applies its quirks, bills the page's
/// simulated cost, and works out `total` and `next`.
pub(crate) fn run(ctx: &mut Ctx<'_>, kind: Kind, mut q: Query) -> Listed {
    let cfg = ctx.cfg;
    let quirks = &cfg.quirks;
    if quirks.ignores_id_filter(&ctx.method) {
        q.filter.retain(|c| !c.is_id_range());
    }
    let page = store::list(ctx.st.table(kind), &q, &ctx.cfg.gen);
    ctx.cost += cost(ctx, &page);
    let (mut total, next) = paging(&q, page.total, page.records.len() as u64);
    if let (Some(t), Some(delta), Some(_)) = (total, quirks.total_delta(&ctx.method), q.start) {
        total = Some(t.saturating_add_signed(delta));
    }
    Listed {
        records: page.records,
        total,
        next,
    }
}

/// Rows' worth of `row_cost` the COUNT query behind `total` costs whatever it counts (with the
/// default 20 µs: 5 ms).
pub(crate) const COUNT_BASE_ROWS: f64 = 250.0;

/// Simulated seconds a list page costs beyond the call itself: `row_cost` for every row it
/// read (skipped to reach its offset, looked at by a filter, returned), and, when it counts
/// `total`, a second (COUNT) query: [`COUNT_BASE_ROWS`] rows' worth plus a tenth of `row_cost`
/// per row counted. So a `start=-1` page of 50 costs 50 rows; the same page at offset 10 000
/// with its count costs 10 050 rows, 250 more and a tenth of the rows counted. Deterministic:
/// it depends on the rows, never on wall time.
pub(crate) fn cost(ctx: &Ctx<'_>, page: &store::Page) -> f64 {
    let row = ctx.cfg.row_cost;
    let read = page.rows_read as f64 * row;
    let count = if page.total.is_some() {
        (COUNT_BASE_ROWS + page.rows_counted as f64 / 10.0) * row
    } else {
        0.0
    };
    read + count
}

/// `total` and `next` of a page: `start=-1` gives `total: 0` and no `next`; `next` only
/// when rows follow this page.
pub(crate) fn paging(q: &Query, total: Option<u64>, got: u64) -> (Option<u64>, Option<u64>) {
    match (q.start, total) {
        (Some(start), Some(total)) => {
            let next = (start + got < total && got > 0).then_some(start + q.limit);
            (Some(total), next)
        }
        _ => (Some(0), None),
    }
}

/// Reads `filter`, `order` and `start` the way every list method here does: empty values
/// (`{}`, `[]`, `""`, `null`) are absent.
pub(crate) fn params(p: &Value) -> (Option<&Value>, Option<&Value>, Option<&Value>) {
    (
        crate::util::param(p, "filter"),
        crate::util::param(p, "order"),
        crate::util::param(p, "start"),
    )
}
