//! PostgreSQL's binary `COPY … TO STDOUT (FORMAT binary)`, decoded row by row as the bytes
//! arrive: how the auditor's walk (`audit::stream_rows`) and the replay read the whole log in
//! one statement, with no page boundaries and no text decoding of numbers, dates or hashes.
//! The format: <https://www.postgresql.org/docs/15/sql-copy.html#id-1.9.3.55.9.4>; each type's
//! binary form is its `*_send` function's.

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::PgConnection;

const SIGNATURE: &[u8] = b"PGCOPY\n\xff\r\n\0";
/// The widest row a [`CopyRow`] may be.
const FIELDS_MAX: usize = 16;
/// 2000-01-01T00:00:00Z, PostgreSQL's epoch for dates and timestamps, in Unix seconds.
const PG_EPOCH_UNIX_SECS: i64 = 946_684_800;

pub(crate) fn malformed(what: &str) -> sqlx::Error {
    sqlx::Error::Protocol(format!("binary COPY: {what}"))
}

/// A row type read from a binary COPY: its column count, and how its fields (`None`: NULL)
/// become one.
pub(crate) trait CopyRow: Sized {
    const COLUMNS: usize;
    fn from_fields(fields: &[Option<&[u8]>]) -> Result<Self, sqlx::Error>;
}

/// The field that must not be NULL.
pub(crate) fn need<'a>(fields: &[Option<&'a [u8]>], i: usize) -> Result<&'a [u8], sqlx::Error> {
    fields[i].ok_or_else(|| malformed("an unexpected NULL"))
}

#[derive(Default)]
pub(crate) struct Decoder {
    buffer: Vec<u8>,
    at: usize,
    header_read: bool,
    ended: bool,
}

/// A reader over the buffered bytes; `None` when they end before what is asked.
struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let piece = self.bytes.get(self.at..self.at.checked_add(n)?)?;
        self.at += n;
        Some(piece)
    }
    fn i16(&mut self) -> Option<i16> {
        self.take(2).map(|b| i16::from_be_bytes(b.try_into().expect("2 bytes")))
    }
    fn i32(&mut self) -> Option<i32> {
        self.take(4).map(|b| i32::from_be_bytes(b.try_into().expect("4 bytes")))
    }
    /// One field: `Some(None)` is NULL.
    fn field(&mut self) -> Option<Option<&'a [u8]>> {
        // A length below -1 reads as never complete: [`Decoder::finish`] then says so.
        match self.i32()? {
            -1 => Some(None),
            n => self.take(usize::try_from(n).ok()?).map(Some),
        }
    }
}

pub(crate) fn i64_of(b: &[u8]) -> Result<i64, sqlx::Error> {
    Ok(i64::from_be_bytes(b.try_into().map_err(|_| malformed("an int8 of the wrong size"))?))
}
pub(crate) fn i32_of(b: &[u8]) -> Result<i32, sqlx::Error> {
    Ok(i32::from_be_bytes(b.try_into().map_err(|_| malformed("an int4 of the wrong size"))?))
}
pub(crate) fn text_of(b: &[u8]) -> Result<String, sqlx::Error> {
    String::from_utf8(b.to_vec()).map_err(|_| malformed("text that is not UTF-8"))
}
pub(crate) fn date_of(b: &[u8]) -> Result<NaiveDate, sqlx::Error> {
    let days = i32_of(b)?;
    NaiveDate::from_ymd_opt(2000, 1, 1)
        .and_then(|d| d.checked_add_signed(chrono::Duration::days(days.into())))
        .ok_or_else(|| malformed("a date out of range"))
}
pub(crate) fn timestamp_of(b: &[u8]) -> Result<DateTime<Utc>, sqlx::Error> {
    let micros = i64_of(b)?;
    micros
        .checked_add(PG_EPOCH_UNIX_SECS * 1_000_000)
        .and_then(DateTime::from_timestamp_micros)
        .ok_or_else(|| malformed("a timestamp out of range"))
}
/// A one-dimensional `text[]` without NULLs (`array_send`).
pub(crate) fn text_array_of(b: &[u8]) -> Result<Vec<String>, sqlx::Error> {
    let bad = || malformed("a text[] that is not one-dimensional text without NULLs");
    let mut c = Cursor { bytes: b, at: 0 };
    let dimensions = c.i32().ok_or_else(bad)?;
    let _has_nulls = c.i32().ok_or_else(bad)?;
    let _element_type = c.i32().ok_or_else(bad)?;
    match dimensions {
        0 => Ok(Vec::new()),
        1 => {
            let length = c.i32().ok_or_else(bad)?;
            let _lower_bound = c.i32().ok_or_else(bad)?;
            (0..length).map(|_| c.field().flatten().ok_or_else(bad).and_then(text_of)).collect()
        }
        _ => Err(bad()),
    }
}

impl Decoder {
    pub(crate) fn extend(&mut self, bytes: &[u8]) {
        if self.at > 0 && self.at == self.buffer.len() {
            self.buffer.clear();
            self.at = 0;
        } else if self.at > 1 << 20 {
            self.buffer.drain(..self.at);
            self.at = 0;
        }
        self.buffer.extend_from_slice(bytes);
    }

    /// After the last bytes: the stream must have ended with its trailer, not inside a row.
    pub(crate) fn finish(&self) -> Result<(), sqlx::Error> {
        if self.ended && self.at == self.buffer.len() {
            Ok(())
        } else {
            Err(malformed("the stream ended inside a row, or without its trailer"))
        }
    }

    /// The next whole row in the bytes given so far, if there is one.
    pub(crate) fn next_row<R: CopyRow>(&mut self) -> Result<Option<R>, sqlx::Error> {
        let mut c = Cursor { bytes: &self.buffer, at: self.at };
        if !self.header_read {
            let Some(signature) = c.take(SIGNATURE.len()) else { return Ok(None) };
            if signature != SIGNATURE {
                return Err(malformed("no binary COPY signature"));
            }
            let Some(_flags) = c.i32() else { return Ok(None) };
            let Some(extension) = c.i32() else { return Ok(None) };
            if c.take(extension.max(0) as usize).is_none() {
                return Ok(None);
            }
            self.header_read = true;
            self.at = c.at;
        }
        if self.ended {
            return Ok(None);
        }
        let Some(fields) = c.i16() else { return Ok(None) };
        if fields == -1 {
            self.ended = true;
            self.at = c.at;
            return Ok(None);
        }
        if usize::try_from(fields).ok() != Some(R::COLUMNS) {
            return Err(malformed("a row with another number of columns than asked for"));
        }
        // Fields on the stack: a row type wider than this does not compile.
        const { assert!(R::COLUMNS <= FIELDS_MAX, "a CopyRow of more than FIELDS_MAX columns") };
        let mut values: [Option<&[u8]>; FIELDS_MAX] = [None; FIELDS_MAX];
        for value in values.iter_mut().take(R::COLUMNS) {
            match c.field() {
                Some(v) => *value = v,
                None => return Ok(None),
            }
        }
        let row = R::from_fields(&values[..R::COLUMNS])?;
        self.at = c.at;
        Ok(Some(row))
    }
}

/// Runs `statement`, a `COPY (…) TO STDOUT (FORMAT binary)` of rows of `R`, and sends its rows
/// to `rows` in batches of `batch_len`, calling `sent` with each batch's last row once the
/// batch was taken. Once the receiver is gone, the rest of the stream is read and dropped
/// undecoded (a COPY cannot be abandoned half read on a connection that goes on being used),
/// so a reader that stops early costs at most what a whole read costs. Returns whether the
/// receiver took every row.
pub(crate) async fn stream<R: CopyRow + Clone>(
    conn: &mut PgConnection,
    statement: &str,
    batch_len: usize,
    rows: &tokio::sync::mpsc::Sender<Vec<R>>,
    mut sent: impl FnMut(&R),
) -> Result<bool, sqlx::Error> {
    use futures_util::StreamExt;
    let batch_len = batch_len.max(1);
    let capacity = batch_len.min(10_000);
    let mut stream = conn.copy_out_raw(statement).await?;
    let mut decoder = Decoder::default();
    let mut batch: Vec<R> = Vec::with_capacity(capacity);
    let mut wanted = true;
    let send = |batch: Vec<R>| {
        let last = batch.last().cloned();
        async move { (rows.send(batch).await.is_ok(), last) }
    };
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        if !wanted {
            continue;
        }
        decoder.extend(&chunk);
        while let Some(row) = decoder.next_row::<R>()? {
            batch.push(row);
            if batch.len() == batch_len {
                let full = std::mem::replace(&mut batch, Vec::with_capacity(capacity));
                let (taken, last) = send(full).await;
                wanted = taken;
                if !wanted {
                    break;
                }
                if let Some(last) = last {
                    sent(&last);
                }
            }
        }
    }
    if wanted {
        decoder.finish()?;
        if !batch.is_empty() {
            let (taken, last) = send(batch).await;
            wanted = taken;
            if let (true, Some(last)) = (taken, last) {
                sent(&last);
            }
        }
    }
    Ok(wanted)
}
