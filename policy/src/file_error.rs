//! Errors in policy and catalog files, with the line and field they concern.
//!
//! A file is parsed into a spanned TOML tree once; every error, whether from
//! TOML syntax, from serde (a bad amount, a missing field) or from validation
//! after deserialization, is reported against a field path, and the path is
//! looked up in the tree to find its line.

use std::fmt;

use serde::de::DeserializeOwned;
use toml::de::{DeTable, DeValue};
use toml::Spanned;

/// What is wrong in a policy or catalog file: the 1-based line, the field path
/// (`amounts.level_4`, `item[3].code`) and a sentence saying what would make
/// it right.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}, {field}: {message}")]
pub struct PolicyFileError {
    pub line: usize,
    pub field: String,
    pub message: String,
}

/// A field path into a TOML document.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FieldPath(Vec<Segment>);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Key(String),
    Index(usize),
}

impl FieldPath {
    pub fn root() -> Self {
        FieldPath(Vec::new())
    }

    /// A path from dotted text; `[n]` after a key is an index
    /// (`item[3].code`).
    pub fn parse(text: &str) -> Self {
        let mut path = FieldPath::root();
        for part in text.split('.').filter(|p| !p.is_empty()) {
            let mut rest = part;
            if let Some(open) = rest.find('[') {
                path = path.key(&rest[..open]);
                rest = &rest[open..];
                while let Some(close) = rest.find(']') {
                    if let Ok(i) = rest[1..close].parse() {
                        path = path.index(i);
                    }
                    rest = &rest[close + 1..];
                }
            } else {
                path = path.key(rest);
            }
        }
        path
    }

    pub fn key(mut self, key: &str) -> Self {
        self.0.push(Segment::Key(key.to_string()));
        self
    }

    pub fn index(mut self, i: usize) -> Self {
        self.0.push(Segment::Index(i));
        self
    }

    pub fn first_key(&self) -> Option<&str> {
        match self.0.first() {
            Some(Segment::Key(k)) => Some(k),
            _ => None,
        }
    }

    fn from_tracked(path: &serde_path_to_error::Path) -> Self {
        use serde_path_to_error::Segment as S;
        let mut out = FieldPath::root();
        for seg in path.iter() {
            out = match seg {
                S::Seq { index } => out.index(*index),
                S::Map { key } => out.key(key),
                S::Enum { variant } => out.key(variant),
                S::Unknown => out,
            };
        }
        out
    }

    fn from_ignored(path: &serde_ignored::Path<'_>) -> Self {
        use serde_ignored::Path as P;
        match path {
            P::Root => FieldPath::root(),
            P::Seq { parent, index } => Self::from_ignored(parent).index(*index),
            P::Map { parent, key } => Self::from_ignored(parent).key(key),
            P::Some { parent } | P::NewtypeStruct { parent } | P::NewtypeVariant { parent } => {
                Self::from_ignored(parent)
            }
        }
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("(file)");
        }
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                Segment::Key(k) if i == 0 => write!(f, "{k}")?,
                Segment::Key(k) => write!(f, ".{k}")?,
                Segment::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

/// A parsed TOML document kept for finding the line of a field.
pub(crate) struct TomlDoc<'a> {
    text: &'a str,
    root: Spanned<DeTable<'a>>,
}

impl<'a> TomlDoc<'a> {
    /// Parses the TOML syntax; a syntax error names the line it is on.
    pub(crate) fn parse(text: &'a str) -> Result<Self, PolicyFileError> {
        match DeTable::parse(text) {
            Ok(root) => Ok(TomlDoc { text, root }),
            Err(e) => Err(PolicyFileError {
                line: e.span().map_or(1, |s| line_of(text, s.start)),
                field: "(syntax)".to_string(),
                message: format!("not valid TOML: {}", e.message().trim_end()),
            }),
        }
    }

    /// Deserializes the whole document into `T`. Returns the value and the
    /// paths of the keys `T` has no field for (the caller decides which of
    /// those are errors: a policy file is read twice, header and rules, and a
    /// key is unknown only if neither reading uses it).
    pub(crate) fn read<T: DeserializeOwned>(&self) -> Result<(T, Vec<FieldPath>), PolicyFileError> {
        let mut ignored = Vec::new();
        let de = toml::Deserializer::parse(self.text)
            .map_err(|e| self.error(&FieldPath::root(), e.message()))?;
        let mut track = serde_path_to_error::Track::new();
        let tracked = serde_path_to_error::Deserializer::new(de, &mut track);
        let result =
            serde_ignored::deserialize(tracked, |p| ignored.push(FieldPath::from_ignored(&p)));
        match result {
            Ok(value) => Ok((value, ignored)),
            Err(e) => {
                let path = FieldPath::from_tracked(&track.path());
                Err(self.serde_error(path, &e, &ignored))
            }
        }
    }

    fn serde_error(
        &self,
        mut path: FieldPath,
        e: &toml::de::Error,
        ignored: &[FieldPath],
    ) -> PolicyFileError {
        let message = e.message().trim_end().to_string();
        // serde reports a missing field against the table that lacks it;
        // name the field itself, at the table's line, unless a key of that
        // table is a near miss of it: then the misspelling is the error.
        if let Some(name) =
            message.strip_prefix("missing field `").and_then(|rest| rest.strip_suffix('`'))
        {
            let misspelt = ignored.iter().find(|p| {
                p.0.len() == path.0.len() + 1
                    && p.0.starts_with(&path.0)
                    && matches!(p.0.last(), Some(Segment::Key(k)) if edit_distance(k, name) <= 2)
            });
            if let Some(p) = misspelt {
                return PolicyFileError {
                    line: self.line(p),
                    field: p.to_string(),
                    message: format!(
                        "unknown field; did you mean `{name}`, which is required but missing?"
                    ),
                };
            }
            let line = self.line(&path);
            path = path.key(name);
            return PolicyFileError {
                line,
                field: path.to_string(),
                message: "is required but missing".to_string(),
            };
        }
        let line = match e.span() {
            Some(span) if span.start > 0 || path.0.is_empty() => line_of(self.text, span.start),
            _ => self.line(&path),
        };
        PolicyFileError { line, field: path.to_string(), message }
    }

    /// An error about `path`, at its line.
    pub(crate) fn error(&self, path: &FieldPath, message: impl Into<String>) -> PolicyFileError {
        PolicyFileError { line: self.line(path), field: path.to_string(), message: message.into() }
    }

    /// The line of the deepest part of `path` that exists in the document:
    /// the key's line for a table entry, the element's for an array index.
    pub(crate) fn line(&self, path: &FieldPath) -> usize {
        line_of(self.text, self.locate(path).0)
    }

    /// Whether every part of `path` exists in the document.
    pub(crate) fn has(&self, path: &FieldPath) -> bool {
        !path.0.is_empty() && self.locate(path).1
    }

    /// The offset of the deepest part of `path` that exists, and whether all of it does.
    fn locate(&self, path: &FieldPath) -> (usize, bool) {
        let mut found = 0;
        let mut offset = 0;
        let mut table: Option<&DeTable<'_>> = Some(self.root.get_ref());
        let mut value: Option<&DeValue<'_>> = None;
        for seg in &path.0 {
            match seg {
                Segment::Key(k) => {
                    let Some(t) = table.or_else(|| value.and_then(DeValue::as_table)) else {
                        break;
                    };
                    let Some((key, v)) = t.iter().find(|(key, _)| key.get_ref() == k) else {
                        break;
                    };
                    offset = key.span().start;
                    value = Some(v.get_ref());
                    table = None;
                }
                Segment::Index(i) => {
                    let Some(element) = value.and_then(DeValue::as_array).and_then(|a| a.get(*i))
                    else {
                        break;
                    };
                    offset = element.span().start;
                    value = Some(element.get_ref());
                    table = None;
                }
            }
            found += 1;
        }
        (offset, found == path.0.len())
    }

    /// Turns the first (by line) ignored path into an "unknown field" error.
    pub(crate) fn unknown_field(
        &self,
        paths: &[FieldPath],
        context: &str,
    ) -> Result<(), PolicyFileError> {
        match paths.iter().min_by_key(|p| self.line(p)) {
            None => Ok(()),
            Some(path) => Err(self.error(
                path,
                format!(
                    "unknown field for {context}; check its spelling against the documented fields"
                ),
            )),
        }
    }
}

/// Levenshtein distance, for spotting misspelt keys.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1).min(row[j] + 1).min(diagonal + usize::from(ca != *cb));
            diagonal = above;
        }
    }
    row[b.len()]
}

fn line_of(text: &str, offset: usize) -> usize {
    let offset = offset.min(text.len());
    text.as_bytes()[..offset].iter().filter(|&&b| b == b'\n').count() + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_print_and_parse_alike() {
        let p = FieldPath::root().key("item").index(3).key("code");
        assert_eq!(p.to_string(), "item[3].code");
        assert_eq!(FieldPath::parse("item[3].code"), p);
        assert_eq!(FieldPath::parse("amounts.level_4").to_string(), "amounts.level_4");
    }

    #[test]
    fn lines_are_found_for_keys_tables_and_array_elements() {
        let text = "a = 1\n\n[amounts]\nlevel_5 = \"1\"\nlevel_4 = \"2\"\n\n[[item]]\ncode = 1\n\n[[item]]\ncode = 2\n";
        let doc = TomlDoc::parse(text).unwrap();
        assert_eq!(doc.line(&FieldPath::parse("a")), 1);
        assert_eq!(doc.line(&FieldPath::parse("amounts")), 3);
        assert_eq!(doc.line(&FieldPath::parse("amounts.level_4")), 5);
        assert_eq!(doc.line(&FieldPath::parse("amounts.level_9")), 3);
        assert_eq!(doc.line(&FieldPath::parse("item[1].code")), 11);
        assert_eq!(doc.line(&FieldPath::parse("missing")), 1);
    }

    #[test]
    fn edit_distance_counts_single_character_edits() {
        assert_eq!(edit_distance("isuer", "issuer"), 1);
        assert_eq!(edit_distance("authorty", "authority"), 1);
        assert_eq!(edit_distance("ratio", "issuer"), 6);
        assert_eq!(edit_distance("", "abc"), 3);
    }

    #[test]
    fn syntax_errors_name_their_line() {
        let e = TomlDoc::parse("a = 1\nb = \n").err().unwrap();
        assert_eq!((e.line, e.field.as_str()), (2, "(syntax)"));
    }
}
