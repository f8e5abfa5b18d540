//! Cloud Controller's pagination and `q` filters.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::{Value, json};
use sqlx::{QueryBuilder, Sqlite};

use crate::error::CfError;

/// The default page size.
pub const DEFAULT_PER_PAGE: u32 = 50;
/// The largest page size.
pub const MAX_PER_PAGE: u32 = 100;

/// How a filterable field is stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Text.
    Text,
    /// A boolean stored as 0/1; values are `true` or `false`.
    Bool,
}

/// A field a listing can be filtered on, and the SQL expression it reads.
#[derive(Clone, Copy, Debug)]
pub struct Field {
    /// The name in `q`.
    pub name: &'static str,
    /// The SQL expression.
    pub column: &'static str,
    /// How it is stored.
    pub kind: Kind,
}

/// A comparison of a `q` filter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// `:`
    Eq,
    /// `>=`
    Ge,
    /// `<=`
    Le,
    /// `<`
    Lt,
    /// `>`
    Gt,
    /// ` IN ` with comma-separated values.
    In,
}

impl Op {
    fn sql(self) -> &'static str {
        match self {
            Op::Eq => " = ",
            Op::Ge => " >= ",
            Op::Le => " <= ",
            Op::Lt => " < ",
            Op::Gt => " > ",
            Op::In => " IN ",
        }
    }
}

/// One `q` filter.
#[derive(Clone, Debug)]
pub struct Filter {
    /// The field.
    pub field: Field,
    /// The comparison.
    pub op: Op,
    /// The values (one, except for `IN`).
    pub values: Vec<String>,
}

/// The paging and filters of a listing request.
#[derive(Clone, Debug)]
pub struct ListQuery {
    /// The page, from 1.
    pub page: u32,
    /// Results per page, 1 to 100.
    pub per_page: u32,
    /// `order-direction=desc`.
    pub descending: bool,
    /// The filters, ANDed.
    pub filters: Vec<Filter>,
    /// The `q` values as sent, for the page links.
    raw_q: Vec<String>,
}

/// Splits `name<op>value` (`:`, `>=`, `<=`, `<`, `>`, ` IN `).
fn split_filter(q: &str) -> Option<(&str, Op, &str)> {
    let end = q
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(q.len());
    let (name, rest) = q.split_at(end);
    if name.is_empty() {
        return None;
    }
    for (token, op) in [
        (">=", Op::Ge),
        ("<=", Op::Le),
        (" IN ", Op::In),
        (":", Op::Eq),
        ("<", Op::Lt),
        (">", Op::Gt),
    ] {
        if let Some(value) = rest.strip_prefix(token) {
            return Some((name, op, value));
        }
    }
    None
}

impl ListQuery {
    /// Reads `page`, `results-per-page`, `order-direction` and every `q` (several `q`, or one
    /// with `;`-separated filters, are ANDed) from a raw query string. Other parameters are
    /// ignored. Filters on fields not in `fields` are refused.
    pub fn parse(raw: Option<&str>, fields: &[Field]) -> Result<ListQuery, CfError> {
        let mut query = ListQuery {
            page: 1,
            per_page: DEFAULT_PER_PAGE,
            descending: false,
            filters: Vec::new(),
            raw_q: Vec::new(),
        };
        for (key, value) in form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
            match &*key {
                "page" => {
                    query.page = value.parse().ok().filter(|&p| p >= 1).ok_or_else(|| {
                        CfError::query(format!("page must be a positive integer, not {value:?}"))
                    })?;
                }
                "results-per-page" => {
                    query.per_page = value
                        .parse()
                        .ok()
                        .filter(|p| (1..=MAX_PER_PAGE).contains(p))
                        .ok_or_else(|| {
                            CfError::query(format!(
                                "results-per-page must be an integer from 1 to {MAX_PER_PAGE}, not {value:?}"
                            ))
                        })?;
                }
                "order-direction" => {
                    query.descending = match &*value {
                        "asc" => false,
                        "desc" => true,
                        other => {
                            return Err(CfError::query(format!(
                                "order-direction must be asc or desc, not {other:?}"
                            )));
                        }
                    }
                }
                "q" => {
                    for part in value.split(';').filter(|p| !p.is_empty()) {
                        query.filters.push(parse_filter(part, fields)?);
                    }
                    query.raw_q.push(value.into_owned());
                }
                _ => {}
            }
        }
        Ok(query)
    }

    /// Appends ` AND <filter>` for every filter to `sql` (which already has a `WHERE`).
    pub fn push_filters(&self, sql: &mut QueryBuilder<'_, Sqlite>) {
        for filter in &self.filters {
            sql.push(" AND ")
                .push(filter.field.column)
                .push(filter.op.sql());
            let bind = |sql: &mut QueryBuilder<'_, Sqlite>, v: &str| match filter.field.kind {
                Kind::Bool => {
                    sql.push_bind(i64::from(v == "true"));
                }
                Kind::Text => {
                    sql.push_bind(v.to_owned());
                }
            };
            if filter.op == Op::In {
                sql.push("(");
                for (i, v) in filter.values.iter().enumerate() {
                    if i > 0 {
                        sql.push(", ");
                    }
                    bind(sql, v);
                }
                sql.push(")");
            } else {
                bind(sql, &filter.values[0]);
            }
        }
    }

    /// ` ORDER BY <column> ASC|DESC LIMIT … OFFSET …`.
    pub fn push_page(&self, sql: &mut QueryBuilder<'_, Sqlite>, order_column: &str) {
        sql.push(" ORDER BY ")
            .push(order_column)
            .push(if self.descending { " DESC" } else { " ASC" })
            .push(" LIMIT ")
            .push_bind(i64::from(self.per_page))
            .push(" OFFSET ")
            .push_bind(i64::from(self.page - 1) * i64::from(self.per_page));
    }

    fn link(&self, path: &str, page: u32) -> String {
        const Q: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.');
        let mut url = format!(
            "{path}?order-direction={}&page={page}&results-per-page={}",
            if self.descending { "desc" } else { "asc" },
            self.per_page
        );
        for q in &self.raw_q {
            url.push_str("&q=");
            url.extend(utf8_percent_encode(q, Q));
        }
        url
    }

    /// The listing body: `total_results`, `total_pages`, `prev_url`, `next_url`, `resources`.
    pub fn body(&self, path: &str, total: i64, resources: Vec<Value>) -> Value {
        let total = u64::try_from(total).unwrap_or(0);
        let pages = total.div_ceil(u64::from(self.per_page));
        let prev = (self.page > 1).then(|| self.link(path, self.page - 1));
        let next = (u64::from(self.page) < pages).then(|| self.link(path, self.page + 1));
        json!({
            "total_results": total,
            "total_pages": pages,
            "prev_url": prev,
            "next_url": next,
            "resources": resources,
        })
    }
}

/// One page of the rows of `select` (`SELECT … FROM …`, without `WHERE`, and with no subquery
/// after its last ` FROM `) that `scope` and the filters keep, with how many there are in all.
pub(crate) async fn fetch<R>(
    pool: &sqlx::SqlitePool,
    select: &str,
    q: &ListQuery,
    order_column: &str,
    scope: impl Fn(&mut QueryBuilder<'_, Sqlite>),
) -> crate::Result<(i64, Vec<R>)>
where
    R: for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow> + Send + Unpin,
{
    // The last ` FROM ` starts the tables: subqueries among the columns come before it.
    let from = select.rfind(" FROM ").map_or(select, |at| &select[at..]);
    let mut count: QueryBuilder<'_, Sqlite> =
        QueryBuilder::new(format!("SELECT count(*){from} WHERE 1 = 1"));
    scope(&mut count);
    q.push_filters(&mut count);
    let total: i64 = count.build_query_scalar().fetch_one(pool).await?;
    let mut rows: QueryBuilder<'_, Sqlite> = QueryBuilder::new(format!("{select} WHERE 1 = 1"));
    scope(&mut rows);
    q.push_filters(&mut rows);
    q.push_page(&mut rows, order_column);
    let rows = rows.build_query_as().fetch_all(pool).await?;
    Ok((total, rows))
}

/// The row of `select` whose `column` is `guid`, or the error `missing` makes.
pub(crate) async fn find_one<'e, R>(
    executor: impl sqlx::SqliteExecutor<'e>,
    select: &str,
    column: &str,
    guid: &str,
    missing: impl FnOnce() -> CfError,
) -> crate::Result<R>
where
    R: for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow> + Send + Unpin,
{
    sqlx::query_as::<_, R>(&format!("{select} WHERE {column} = ?"))
        .bind(guid)
        .fetch_optional(executor)
        .await?
        .ok_or_else(|| missing().into())
}

fn parse_filter(text: &str, fields: &[Field]) -> Result<Filter, CfError> {
    let (name, op, value) = split_filter(text).ok_or_else(|| {
        CfError::query(format!("{text:?} is not a filter of the form name:value"))
    })?;
    let field = *fields.iter().find(|f| f.name == name).ok_or_else(|| {
        let names: Vec<_> = fields.iter().map(|f| f.name).collect();
        CfError::query(format!(
            "{name} cannot be filtered on here; the filters are {}",
            names.join(", ")
        ))
    })?;
    let values: Vec<String> = if op == Op::In {
        value.split(',').map(str::to_owned).collect()
    } else {
        vec![value.to_owned()]
    };
    if field.kind == Kind::Bool {
        if op != Op::Eq && op != Op::In {
            return Err(CfError::query(format!(
                "{name} is a boolean; use {name}:true or {name}:false"
            )));
        }
        if let Some(bad) = values.iter().find(|v| *v != "true" && *v != "false") {
            return Err(CfError::query(format!(
                "{name} must be true or false, not {bad:?}"
            )));
        }
    }
    Ok(Filter { field, op, values })
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIELDS: &[Field] = &[
        Field {
            name: "label",
            column: "s.label",
            kind: Kind::Text,
        },
        Field {
            name: "active",
            column: "s.active",
            kind: Kind::Bool,
        },
    ];

    #[test]
    fn filters_and_paging_are_read_and_bad_ones_refused() {
        let q = ListQuery::parse(
            Some("q=label%20IN%20a,b;active:true&page=2&results-per-page=1&order-direction=desc&inline-relations-depth=1"),
            FIELDS,
        )
        .unwrap();
        assert_eq!((q.page, q.per_page, q.descending), (2, 1, true));
        assert_eq!(q.filters.len(), 2);
        assert_eq!(
            (q.filters[0].op, q.filters[0].values.clone()),
            (Op::In, vec!["a".into(), "b".into()])
        );
        for bad in [
            "page=0",
            "page=x",
            "results-per-page=101",
            "results-per-page=0",
            "order-direction=up",
            "q=provider:x",
            "q=active:yes",
            "q=active>=true",
            "q=:x",
            "q=label",
        ] {
            let e = ListQuery::parse(Some(bad), FIELDS).unwrap_err();
            assert_eq!(e.kind.name, "BadQueryParameter", "{bad}");
        }
        assert_eq!(split_filter("label>=b").unwrap().1, Op::Ge);
        assert_eq!(split_filter("label<b").unwrap().1, Op::Lt);
        assert_eq!(split_filter("label:a:b").unwrap().2, "a:b");
    }

    #[test]
    fn page_links_follow_the_page_and_keep_the_filters() {
        let q = ListQuery::parse(Some("q=label:a b&results-per-page=2&page=2"), FIELDS).unwrap();
        let body = q.body("/v2/services", 5, vec![]);
        assert_eq!(body["total_pages"], 3);
        assert_eq!(
            body["prev_url"],
            "/v2/services?order-direction=asc&page=1&results-per-page=2&q=label%3Aa%20b"
        );
        assert_eq!(
            body["next_url"],
            "/v2/services?order-direction=asc&page=3&results-per-page=2&q=label%3Aa%20b"
        );
        let last = ListQuery::parse(Some("results-per-page=5"), FIELDS)
            .unwrap()
            .body("/x", 5, vec![]);
        assert_eq!(
            (last["prev_url"].clone(), last["next_url"].clone()),
            (Value::Null, Value::Null)
        );
        assert_eq!(
            ListQuery::parse(None, FIELDS)
                .unwrap()
                .body("/x", 0, vec![])["total_pages"],
            0
        );
    }
}
