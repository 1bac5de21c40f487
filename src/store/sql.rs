//! SQL written once for both databases. A statement is one text with
//! numbered placeholders (`$1`, `$2`, ...), its values are `Param`s, and the
//! rows it answers are `Row`s; the same `Query` runs on SQLite and on
//! PostgreSQL. What differs between the engines is absorbed here rather
//! than written twice:
//!
//! - placeholders: PostgreSQL's `$N` become SQLite's `?N` (the same numbers,
//!   so a value may be named twice and in any order);
//! - types: a `Param` takes the type PostgreSQL inferred for its place
//!   (`INTEGER` or `BIGINT`, `TEXT` or `JSON`, `BOOLEAN`), where SQLite
//!   takes any; a `Row` reads an integer column as `i64` and a boolean as
//!   `bool` from either;
//! - text: PostgreSQL's `text` holds no NUL, so a NUL becomes U+FFFD there
//!   (as an undecodable byte does), and nowhere else;
//! - transactions: a transaction's body is plain code over `Tx`, run on the
//!   SQLite writer's thread, or on a blocking thread over a PostgreSQL
//!   transaction (each statement a round trip).
//!
//! What the engines really do differently stays with each backend: the
//! writers, leases and notices, the shared queue, search.

use anyhow::{Context, Result, anyhow};
use serde_json::Value;
use std::borrow::Cow;

/// A value bound to a placeholder.
#[derive(Clone, Debug, PartialEq)]
pub enum Param {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
    Bytes(Vec<u8>),
    Bool(bool),
}

impl From<i64> for Param {
    fn from(value: i64) -> Param {
        Param::Int(value)
    }
}

impl From<i32> for Param {
    fn from(value: i32) -> Param {
        Param::Int(value.into())
    }
}

impl From<u32> for Param {
    fn from(value: u32) -> Param {
        Param::Int(value.into())
    }
}

/// A u64 kept in a signed column; past `i64::MAX` it is the largest there is
/// (counts and limits, never ids).
impl From<u64> for Param {
    fn from(value: u64) -> Param {
        Param::Int(i64::try_from(value).unwrap_or(i64::MAX))
    }
}

impl From<f64> for Param {
    fn from(value: f64) -> Param {
        Param::Real(value)
    }
}

impl From<bool> for Param {
    fn from(value: bool) -> Param {
        Param::Bool(value)
    }
}

impl From<&str> for Param {
    fn from(value: &str) -> Param {
        Param::Text(value.to_string())
    }
}

impl From<String> for Param {
    fn from(value: String) -> Param {
        Param::Text(value)
    }
}

impl From<&String> for Param {
    fn from(value: &String) -> Param {
        Param::Text(value.clone())
    }
}

impl From<Vec<u8>> for Param {
    fn from(value: Vec<u8>) -> Param {
        Param::Bytes(value)
    }
}

/// JSON is kept as its text, in a `TEXT` or a `JSON` column alike.
impl From<&Value> for Param {
    fn from(value: &Value) -> Param {
        Param::Text(value.to_string())
    }
}

impl<T: Into<Param>> From<Option<T>> for Param {
    fn from(value: Option<T>) -> Param {
        value.map_or(Param::Null, Into::into)
    }
}

/// A statement and its values.
#[derive(Clone, Debug)]
pub struct Query {
    sql: Cow<'static, str>,
    params: Vec<Param>,
}

impl Query {
    pub fn new(sql: impl Into<Cow<'static, str>>, params: Vec<Param>) -> Query {
        Query { sql: sql.into(), params }
    }

    /// The text as PostgreSQL reads it.
    pub fn postgres_sql(&self) -> &str {
        &self.sql
    }

    /// The text as SQLite reads it: each `$N` outside a quoted string is
    /// `?N`.
    pub fn sqlite_sql(&self) -> Cow<'_, str> {
        sqlite_placeholders(&self.sql)
    }

    pub fn params(&self) -> &[Param] {
        &self.params
    }
}

/// `query!("... $1 ... $2", a, b)`: a `Query` whose values are anything
/// that becomes a `Param`.
#[macro_export]
macro_rules! query {
    ($sql:expr $(, $param:expr)* $(,)?) => {
        $crate::store::sql::Query::new($sql, vec![$($crate::store::sql::Param::from($param)),*])
    };
}
pub use query;

fn sqlite_placeholders(sql: &str) -> Cow<'_, str> {
    if !sql.contains('$') {
        return Cow::Borrowed(sql);
    }
    let mut out = String::with_capacity(sql.len());
    let mut quoted: Option<char> = None;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match quoted {
            Some(quote) if c == quote => quoted = None,
            Some(_) => {}
            None if c == '\'' || c == '"' => quoted = Some(c),
            None if c == '$' && chars.peek().is_some_and(char::is_ascii_digit) => {
                out.push('?');
                continue;
            }
            None => {}
        }
        out.push(c);
    }
    Cow::Owned(out)
}

/// One value of a row, whichever engine read it.
#[derive(Clone, Debug, PartialEq)]
pub enum Cell {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
    Bytes(Vec<u8>),
    Bool(bool),
}

/// A row as read, its values in the order of the statement's columns.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    cells: Vec<Cell>,
}

impl Row {
    pub fn new(cells: Vec<Cell>) -> Row {
        Row { cells }
    }

    pub fn len(&self) -> usize {
        self.cells.len()
    }

    pub fn is_empty(&self) -> bool {
        self.cells.is_empty()
    }

    /// The value of column `index` (from 0) as `T`.
    pub fn get<T: FromCell>(&self, index: usize) -> Result<T> {
        let cell = self.cells.get(index).ok_or_else(|| anyhow!("the row has no column {index}"))?;
        T::from_cell(cell).with_context(|| format!("read column {index}"))
    }

    /// Column `index` parsed from its JSON text.
    pub fn json<T: serde::de::DeserializeOwned>(&self, index: usize) -> Result<T> {
        let text: String = self.get(index)?;
        serde_json::from_str(&text).with_context(|| format!("read column {index} as JSON"))
    }

    /// Column `index` parsed from its JSON text, when it is not null.
    pub fn json_opt<T: serde::de::DeserializeOwned>(&self, index: usize) -> Result<Option<T>> {
        let text: Option<String> = self.get(index)?;
        text.map(|text| serde_json::from_str(&text).with_context(|| format!("read column {index} as JSON"))).transpose()
    }
}

/// A Rust value a cell can be read as.
pub trait FromCell: Sized {
    fn from_cell(cell: &Cell) -> Result<Self>;
}

impl FromCell for i64 {
    fn from_cell(cell: &Cell) -> Result<i64> {
        match cell {
            Cell::Int(value) => Ok(*value),
            Cell::Bool(value) => Ok(i64::from(*value)),
            other => Err(anyhow!("expected an integer, found {other:?}")),
        }
    }
}

macro_rules! from_int_cell {
    ($($ty:ty),*) => {$(
        impl FromCell for $ty {
            fn from_cell(cell: &Cell) -> Result<$ty> {
                let value = i64::from_cell(cell)?;
                <$ty>::try_from(value).map_err(|_| anyhow!("{value} is out of range for {}", stringify!($ty)))
            }
        }
    )*};
}
from_int_cell!(i32, u32, u64, usize);

impl FromCell for f64 {
    fn from_cell(cell: &Cell) -> Result<f64> {
        match cell {
            Cell::Real(value) => Ok(*value),
            Cell::Int(value) => Ok(*value as f64),
            other => Err(anyhow!("expected a number, found {other:?}")),
        }
    }
}

impl FromCell for bool {
    fn from_cell(cell: &Cell) -> Result<bool> {
        match cell {
            Cell::Bool(value) => Ok(*value),
            Cell::Int(0) => Ok(false),
            Cell::Int(1) => Ok(true),
            other => Err(anyhow!("expected a boolean, found {other:?}")),
        }
    }
}

impl FromCell for String {
    fn from_cell(cell: &Cell) -> Result<String> {
        match cell {
            Cell::Text(value) => Ok(value.clone()),
            other => Err(anyhow!("expected text, found {other:?}")),
        }
    }
}

impl FromCell for Vec<u8> {
    fn from_cell(cell: &Cell) -> Result<Vec<u8>> {
        match cell {
            Cell::Bytes(value) => Ok(value.clone()),
            other => Err(anyhow!("expected bytes, found {other:?}")),
        }
    }
}

impl<T: FromCell> FromCell for Option<T> {
    fn from_cell(cell: &Cell) -> Result<Option<T>> {
        match cell {
            Cell::Null => Ok(None),
            other => T::from_cell(other).map(Some),
        }
    }
}

/// What a transaction's body may do, on either engine.
pub trait Tx {
    /// Every row the statement answers.
    fn rows(&mut self, query: &Query) -> Result<Vec<Row>>;
    /// The number of rows the statement changed.
    fn execute(&mut self, query: &Query) -> Result<u64>;

    /// The one row the statement answers, if any.
    fn row(&mut self, query: &Query) -> Result<Option<Row>> {
        Ok(self.rows(query)?.into_iter().next())
    }
}

pub(super) mod sqlite {
    //! `Query` on a rusqlite connection.
    use super::{Cell, Param, Query, Row, Tx};
    use anyhow::Result;
    use rusqlite::types::{ToSqlOutput, ValueRef};

    impl rusqlite::ToSql for Param {
        fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
            Ok(match self {
                Param::Null => ToSqlOutput::Borrowed(ValueRef::Null),
                Param::Int(value) => ToSqlOutput::Borrowed(ValueRef::Integer(*value)),
                Param::Real(value) => ToSqlOutput::Borrowed(ValueRef::Real(*value)),
                Param::Text(value) => ToSqlOutput::Borrowed(ValueRef::Text(value.as_bytes())),
                Param::Bytes(value) => ToSqlOutput::Borrowed(ValueRef::Blob(value)),
                Param::Bool(value) => ToSqlOutput::Borrowed(ValueRef::Integer(i64::from(*value))),
            })
        }
    }

    fn cell(value: ValueRef<'_>) -> Cell {
        match value {
            ValueRef::Null => Cell::Null,
            ValueRef::Integer(value) => Cell::Int(value),
            ValueRef::Real(value) => Cell::Real(value),
            ValueRef::Text(text) => Cell::Text(String::from_utf8_lossy(text).into_owned()),
            ValueRef::Blob(bytes) => Cell::Bytes(bytes.to_vec()),
        }
    }

    /// Every row `query` answers on `conn`.
    pub fn rows(conn: &rusqlite::Connection, query: &Query) -> Result<Vec<Row>> {
        let mut statement = conn.prepare_cached(&query.sqlite_sql())?;
        let columns = statement.column_count();
        let mut answered = statement.query(rusqlite::params_from_iter(query.params()))?;
        let mut rows = Vec::new();
        while let Some(row) = answered.next()? {
            let cells = (0..columns).map(|index| row.get_ref(index).map(cell)).collect::<rusqlite::Result<_>>()?;
            rows.push(Row::new(cells));
        }
        Ok(rows)
    }

    /// The rows `query` changed on `conn`.
    pub fn execute(conn: &rusqlite::Connection, query: &Query) -> Result<u64> {
        let mut statement = conn.prepare_cached(&query.sqlite_sql())?;
        Ok(statement.execute(rusqlite::params_from_iter(query.params()))? as u64)
    }

    impl Tx for rusqlite::Transaction<'_> {
        fn rows(&mut self, query: &Query) -> Result<Vec<Row>> {
            rows(self, query)
        }

        fn execute(&mut self, query: &Query) -> Result<u64> {
            execute(self, query)
        }
    }
}

pub(super) mod postgres {
    //! `Query` on a PostgreSQL connection.
    use super::{Cell, Param, Query, Row, Tx};
    use anyhow::{Result, anyhow};
    use deadpool_postgres::GenericClient;
    use std::error::Error;
    use tokio_postgres::types::private::BytesMut;
    use tokio_postgres::types::{IsNull, ToSql, Type, to_sql_checked};

    type BoxError = Box<dyn Error + Sync + Send>;

    /// Text as PostgreSQL can hold it.
    fn text(value: &str) -> std::borrow::Cow<'_, str> {
        if value.contains('\0') {
            std::borrow::Cow::Owned(value.replace('\0', "\u{FFFD}"))
        } else {
            std::borrow::Cow::Borrowed(value)
        }
    }

    impl ToSql for Param {
        fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
            match (self, ty) {
                (Param::Null, _) => Ok(IsNull::Yes),
                (Param::Int(value), &Type::INT8) => value.to_sql(ty, out),
                (Param::Int(value), &Type::INT4) => i32::try_from(*value)?.to_sql(ty, out),
                (Param::Int(value), &Type::INT2) => i16::try_from(*value)?.to_sql(ty, out),
                (Param::Int(value), &Type::FLOAT8) => (*value as f64).to_sql(ty, out),
                (Param::Int(value), &Type::BOOL) => (*value != 0).to_sql(ty, out),
                (Param::Real(value), &Type::FLOAT8) => value.to_sql(ty, out),
                (Param::Real(value), &Type::FLOAT4) => (*value as f32).to_sql(ty, out),
                (Param::Bool(value), &Type::BOOL) => value.to_sql(ty, out),
                (Param::Bool(value), &Type::INT8) => i64::from(*value).to_sql(ty, out),
                (Param::Bool(value), &Type::INT4) => i32::from(*value).to_sql(ty, out),
                (Param::Text(value), &Type::JSON | &Type::JSONB) => {
                    let json: serde_json::Value = serde_json::from_str(&text(value))?;
                    json.to_sql(ty, out)
                }
                (Param::Text(value), _) => text(value).as_ref().to_sql(ty, out),
                (Param::Bytes(value), _) => value.as_slice().to_sql(ty, out),
                (param, ty) => Err(format!("{param:?} cannot be sent as a PostgreSQL {ty}").into()),
            }
        }

        fn accepts(ty: &Type) -> bool {
            [
                Type::INT2,
                Type::INT4,
                Type::INT8,
                Type::FLOAT4,
                Type::FLOAT8,
                Type::BOOL,
                Type::TEXT,
                Type::VARCHAR,
                Type::BPCHAR,
                Type::NAME,
                Type::UNKNOWN,
                Type::JSON,
                Type::JSONB,
                Type::BYTEA,
            ]
            .contains(ty)
        }

        to_sql_checked!();
    }

    fn cell(row: &tokio_postgres::Row, index: usize) -> Result<Cell> {
        let ty = row.columns()[index].type_();
        let cell = match *ty {
            Type::INT2 => row.try_get::<_, Option<i16>>(index)?.map(|v| Cell::Int(v.into())),
            Type::INT4 => row.try_get::<_, Option<i32>>(index)?.map(|v| Cell::Int(v.into())),
            Type::INT8 => row.try_get::<_, Option<i64>>(index)?.map(Cell::Int),
            Type::FLOAT4 => row.try_get::<_, Option<f32>>(index)?.map(|v| Cell::Real(v.into())),
            Type::FLOAT8 => row.try_get::<_, Option<f64>>(index)?.map(Cell::Real),
            Type::BOOL => row.try_get::<_, Option<bool>>(index)?.map(Cell::Bool),
            Type::BYTEA => row.try_get::<_, Option<Vec<u8>>>(index)?.map(Cell::Bytes),
            Type::JSON | Type::JSONB => {
                row.try_get::<_, Option<serde_json::Value>>(index)?.map(|v| Cell::Text(v.to_string()))
            }
            Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME => {
                row.try_get::<_, Option<String>>(index)?.map(Cell::Text)
            }
            ref other => return Err(anyhow!("column {index} has the type {other}, which the store does not read")),
        };
        Ok(cell.unwrap_or(Cell::Null))
    }

    fn params(query: &Query) -> Vec<&(dyn ToSql + Sync)> {
        query.params().iter().map(|param| param as &(dyn ToSql + Sync)).collect()
    }

    /// Every row `query` answers on `client`.
    pub async fn rows(client: &impl GenericClient, query: &Query) -> Result<Vec<Row>> {
        let statement = client.prepare_cached(query.postgres_sql()).await?;
        let answered = client.query(&statement, &params(query)).await?;
        answered
            .iter()
            .map(|row| (0..row.len()).map(|index| cell(row, index)).collect::<Result<Vec<_>>>().map(Row::new))
            .collect()
    }

    /// The rows `query` changed on `client`.
    pub async fn execute(client: &impl GenericClient, query: &Query) -> Result<u64> {
        let statement = client.prepare_cached(query.postgres_sql()).await?;
        Ok(client.execute(&statement, &params(query)).await?)
    }

    /// A PostgreSQL transaction driven from a blocking thread: each
    /// statement waits for its answer on the runtime it was opened from.
    pub struct BlockingTx<'a> {
        pub transaction: deadpool_postgres::Transaction<'a>,
        pub runtime: tokio::runtime::Handle,
    }

    impl Tx for BlockingTx<'_> {
        fn rows(&mut self, query: &Query) -> Result<Vec<Row>> {
            self.runtime.block_on(rows(&self.transaction, query))
        }

        fn execute(&mut self, query: &Query) -> Result<u64> {
            self.runtime.block_on(execute(&self.transaction, query))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_become_sqlites_numbered_ones_outside_quoted_text() {
        let query = query!("SELECT a FROM t WHERE b = $2 AND c = '$1' AND d = $1 AND \"$3\" = $10", 1, "x");
        assert_eq!(query.sqlite_sql(), "SELECT a FROM t WHERE b = ?2 AND c = '$1' AND d = ?1 AND \"$3\" = ?10");
        assert_eq!(query.postgres_sql(), "SELECT a FROM t WHERE b = $2 AND c = '$1' AND d = $1 AND \"$3\" = $10");
        assert_eq!(query.params(), [Param::Int(1), Param::Text("x".into())]);
        assert!(matches!(query!("SELECT 1").sqlite_sql(), Cow::Borrowed(_)));
    }

    #[test]
    fn cells_read_as_what_either_engine_keeps() {
        let row = Row::new(vec![Cell::Int(1), Cell::Bool(true), Cell::Null, Cell::Text("[1,2]".into())]);
        assert!(row.get::<bool>(0).unwrap());
        assert!(row.get::<bool>(1).unwrap());
        assert_eq!(row.get::<i64>(1).unwrap(), 1);
        assert_eq!(row.get::<Option<String>>(2).unwrap(), None);
        assert_eq!(row.json::<Vec<u8>>(3).unwrap(), [1, 2]);
        assert!(row.get::<u32>(3).is_err());
        assert!(row.get::<i64>(9).is_err());
        assert!(Row::new(vec![Cell::Int(-1)]).get::<u64>(0).is_err());
    }
}
