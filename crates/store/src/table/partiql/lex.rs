//! The PartiQL lexer: identifiers (bare or `"quoted"`), `'strings'` (`''` escapes a quote),
//! numbers, `?` parameters and punctuation, including the `<<` `>>` of set literals.

use super::malformed;
use crate::table::error::DdbError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tok {
    /// A bare word: a keyword, a function or an attribute / table name.
    Word(String),
    /// A `"double-quoted"` name (case kept, never a keyword).
    Quoted(String),
    /// A `'single-quoted'` string literal.
    Str(String),
    /// A number literal as written (without a sign).
    Num(String),
    /// A `?` parameter.
    Param,
    Sym(&'static str),
}

impl std::fmt::Display for Tok {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Tok::Word(w) => f.write_str(w),
            Tok::Quoted(q) => write!(f, "\"{q}\""),
            Tok::Str(s) => write!(f, "'{s}'"),
            Tok::Num(n) => f.write_str(n),
            Tok::Param => f.write_str("?"),
            Tok::Sym(s) => f.write_str(s),
        }
    }
}

const SYMBOLS: &[&str] = &[
    "<<", ">>", "<>", "!=", "<=", ">=", "<", ">", "=", "(", ")", "[", "]", "{", "}", ",", ".", ":",
    "*", "+", "-",
];

pub fn lex(src: &str) -> Result<Vec<Tok>, DdbError> {
    let b = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        // `--` starts a comment that runs to the end of the line.
        if src[i..].starts_with("--") {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
            continue;
        }
        if c == b'\'' || c == b'"' {
            let (text, next) = quoted(src, i, c)?;
            out.push(if c == b'\'' {
                Tok::Str(text)
            } else {
                Tok::Quoted(text)
            });
            i = next;
            continue;
        }
        if c.is_ascii_digit() || (c == b'.' && b.get(i + 1).is_some_and(u8::is_ascii_digit)) {
            let start = i;
            while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'.') {
                i += 1;
            }
            if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
                let mut j = i + 1;
                if j < b.len() && (b[j] == b'+' || b[j] == b'-') {
                    j += 1;
                }
                if j < b.len() && b[j].is_ascii_digit() {
                    i = j;
                    while i < b.len() && b[i].is_ascii_digit() {
                        i += 1;
                    }
                }
            }
            out.push(Tok::Num(src[start..i].to_string()));
            continue;
        }
        if c.is_ascii_alphabetic() || c == b'_' || c == b'$' {
            let start = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b'$') {
                i += 1;
            }
            out.push(Tok::Word(src[start..i].to_string()));
            continue;
        }
        if c == b'?' {
            out.push(Tok::Param);
            i += 1;
            continue;
        }
        match SYMBOLS.iter().find(|s| src[i..].starts_with(**s)) {
            Some(s) => {
                out.push(Tok::Sym(s));
                i += s.len();
            }
            None => {
                let ch = src[i..].chars().next().unwrap_or('?');
                return Err(malformed(&format!("Unexpected character: '{ch}'")));
            }
        }
    }
    Ok(out)
}

/// A quoted run starting at `start` (the quote), with a doubled quote standing for one.
fn quoted(src: &str, start: usize, q: u8) -> Result<(String, usize), DdbError> {
    let b = src.as_bytes();
    let mut text = String::new();
    let mut i = start + 1;
    let mut run = i;
    loop {
        if i >= b.len() {
            return Err(malformed(if q == b'\'' {
                "Unterminated string literal"
            } else {
                "Unterminated quoted identifier"
            }));
        }
        if b[i] == q {
            text.push_str(&src[run..i]);
            if b.get(i + 1) == Some(&q) {
                text.push(q as char);
                i += 2;
                run = i;
                continue;
            }
            return Ok((text, i + 1));
        }
        i += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_of_a_statement() {
        let t = lex(
            r#"SELECT "a b", c FROM "T"."ix" WHERE x <> 'it''s' AND s = <<1.5e3, -2>> -- note"#,
        )
        .unwrap();
        assert_eq!(
            t,
            vec![
                Tok::Word("SELECT".into()),
                Tok::Quoted("a b".into()),
                Tok::Sym(","),
                Tok::Word("c".into()),
                Tok::Word("FROM".into()),
                Tok::Quoted("T".into()),
                Tok::Sym("."),
                Tok::Quoted("ix".into()),
                Tok::Word("WHERE".into()),
                Tok::Word("x".into()),
                Tok::Sym("<>"),
                Tok::Str("it's".into()),
                Tok::Word("AND".into()),
                Tok::Word("s".into()),
                Tok::Sym("="),
                Tok::Sym("<<"),
                Tok::Num("1.5e3".into()),
                Tok::Sym(","),
                Tok::Sym("-"),
                Tok::Num("2".into()),
                Tok::Sym(">>"),
            ]
        );
        assert!(lex("SELECT * FROM t WHERE a = 'open").is_err());
        assert!(lex("SELECT # FROM t").is_err());
    }
}
