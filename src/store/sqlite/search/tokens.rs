//! FTS5's own tokenizer (`porter unicode61`, as `flows_fts` declares it),
//! called through FTS5's C API, so the library's postings split, fold and
//! stem words exactly as FTS5 does, in a flow's fields and in a query alike.

use rusqlite::{Connection, ffi};
use std::ffi::{c_char, c_int, c_void};
use std::marker::PhantomData;
use std::ptr::null_mut;

/// Whether a text is a flow's field or a word of a query (which FTS5 reads
/// as a prefix: `"word"*`).
#[derive(Clone, Copy, Debug)]
pub enum Purpose {
    Document,
    QueryPrefix,
}

/// A `porter unicode61` tokenizer of one connection. It lives no longer than
/// the connection, whose FTS5 module its code and state belong to.
pub struct Tokenizer<'conn> {
    instance: *mut ffi::Fts5Tokenizer,
    methods: ffi::fts5_tokenizer,
    _connection: PhantomData<&'conn Connection>,
}

impl<'conn> Tokenizer<'conn> {
    pub fn new(conn: &'conn Connection) -> rusqlite::Result<Tokenizer<'conn>> {
        // SAFETY: the handle is this open connection's; the API pointer and
        // the tokenizer's methods belong to its FTS5 module, which outlives
        // the tokenizer (tied to `'conn`).
        unsafe {
            let api = fts5_api(conn.handle())?;
            let find = (*api).xFindTokenizer.ok_or_else(|| failure("FTS5 cannot find tokenizers"))?;
            let mut user_data: *mut c_void = null_mut();
            let mut methods: ffi::fts5_tokenizer = std::mem::zeroed();
            checked(find(api, c"porter".as_ptr(), &mut user_data, &mut methods))?;
            let create = methods.xCreate.ok_or_else(|| failure("FTS5's porter tokenizer cannot be created"))?;
            let mut arguments = [c"unicode61".as_ptr()];
            let mut instance = null_mut();
            checked(create(user_data, arguments.as_mut_ptr(), 1, &mut instance))?;
            Ok(Tokenizer { instance, methods, _connection: PhantomData })
        }
    }

    /// Call `each` with every token of `text`, in order.
    pub fn tokens(&self, text: &str, purpose: Purpose, mut each: impl FnMut(&str)) -> rusqlite::Result<()> {
        let flags = match purpose {
            Purpose::Document => ffi::FTS5_TOKENIZE_DOCUMENT,
            Purpose::QueryPrefix => ffi::FTS5_TOKENIZE_QUERY | ffi::FTS5_TOKENIZE_PREFIX,
        };
        let length = c_int::try_from(text.len()).map_err(|_| failure("a text too long to tokenize"))?;
        let tokenize = self.methods.xTokenize.ok_or_else(|| failure("FTS5's porter tokenizer cannot tokenize"))?;
        let mut each: &mut dyn FnMut(&str) = &mut each;
        // SAFETY: the context points at `each`, alive for the whole call;
        // the tokenizer hands back byte ranges valid during the callback.
        unsafe {
            let context = (&mut each as *mut &mut dyn FnMut(&str)).cast::<c_void>();
            checked(tokenize(self.instance, context, flags, text.as_ptr().cast(), length, Some(token_seen)))
        }
    }

    /// The tokens of `text`, collected.
    pub fn collect(&self, text: &str, purpose: Purpose) -> rusqlite::Result<Vec<String>> {
        let mut tokens = Vec::new();
        self.tokens(text, purpose, |token| tokens.push(token.to_string()))?;
        Ok(tokens)
    }
}

impl Drop for Tokenizer<'_> {
    fn drop(&mut self) {
        if let Some(delete) = self.methods.xDelete {
            // SAFETY: the instance was made by this module's xCreate and is
            // deleted once.
            unsafe { delete(self.instance) };
        }
    }
}

unsafe extern "C" fn token_seen(
    context: *mut c_void,
    _flags: c_int,
    token: *const c_char,
    length: c_int,
    _start: c_int,
    _end: c_int,
) -> c_int {
    // SAFETY: `context` is the `&mut dyn FnMut` `tokens` passed, and the
    // token's bytes are valid for `length` during this call.
    unsafe {
        let each = &mut *context.cast::<&mut dyn FnMut(&str)>();
        let bytes = std::slice::from_raw_parts(token.cast::<u8>(), usize::try_from(length).unwrap_or(0));
        // FTS5's tokenizers cut and fold text on character boundaries.
        if let Ok(token) = std::str::from_utf8(bytes) {
            each(token);
        }
    }
    ffi::SQLITE_OK
}

/// The connection's FTS5 API, which `SELECT fts5(?)` hands over as a bound
/// pointer (the documented way to reach it).
unsafe fn fts5_api(db: *mut ffi::sqlite3) -> rusqlite::Result<*mut ffi::fts5_api> {
    let mut statement = null_mut();
    // SAFETY: `db` is open; the statement is finalized before returning and
    // `api` outlives the step that writes it.
    unsafe {
        checked(ffi::sqlite3_prepare_v2(db, c"SELECT fts5(?1)".as_ptr(), -1, &mut statement, null_mut()))?;
        let mut api: *mut ffi::fts5_api = null_mut();
        let bound = ffi::sqlite3_bind_pointer(
            statement,
            1,
            (&mut api as *mut *mut ffi::fts5_api).cast(),
            c"fts5_api_ptr".as_ptr(),
            None,
        );
        let stepped = ffi::sqlite3_step(statement);
        ffi::sqlite3_finalize(statement);
        checked(bound)?;
        if stepped != ffi::SQLITE_ROW || api.is_null() {
            return Err(failure("this SQLite has no FTS5"));
        }
        Ok(api)
    }
}

fn checked(code: c_int) -> rusqlite::Result<()> {
    if code == ffi::SQLITE_OK { Ok(()) } else { Err(rusqlite::Error::SqliteFailure(ffi::Error::new(code), None)) }
}

fn failure(message: &str) -> rusqlite::Error {
    rusqlite::Error::SqliteFailure(ffi::Error::new(ffi::SQLITE_ERROR), Some(message.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_split_folded_and_stemmed_as_fts5_does() {
        let conn = Connection::open_in_memory().unwrap();
        let tokenizer = Tokenizer::new(&conn).unwrap();
        let tokens = tokenizer.collect("Reports: the FORECASTING of rain_fall, Café 42", Purpose::Document).unwrap();
        assert_eq!(tokens, ["report", "the", "forecast", "of", "rain", "fall", "cafe", "42"]);
        assert_eq!(tokenizer.collect("forec", Purpose::QueryPrefix).unwrap(), ["forec"]);
        assert_eq!(tokenizer.collect("reports", Purpose::QueryPrefix).unwrap(), ["report"]);

        // Whatever FTS5 itself indexes for a text, the tokenizer gives.
        conn.execute_batch(
            "CREATE VIRTUAL TABLE t USING fts5(x, tokenize = 'porter unicode61');
             CREATE VIRTUAL TABLE v USING fts5vocab(t, instance);",
        )
        .unwrap();
        let text = "Ünïcode wörds, running jumps; généralement über-fast ṩ 3.14 x²";
        conn.execute("INSERT INTO t (x) VALUES (?1)", [text]).unwrap();
        let mut statement = conn.prepare("SELECT term FROM v ORDER BY offset").unwrap();
        let indexed: Vec<String> = statement.query_map([], |row| row.get(0)).unwrap().map(Result::unwrap).collect();
        assert_eq!(tokenizer.collect(text, Purpose::Document).unwrap(), indexed);
    }
}
