//! Writing execline scripts: quoting words for `execlineb`, and keeping
//! literal `$` references out of the substitution done by `importas`.
//!
//! Two layers act on every word of a script, and both were checked against
//! execline 2.9 (`execlineb -P`), not assumed:
//!
//! 1. **The lexer** (`execlineb`): inside double quotes, a backslash
//!    escapes the next character (`\"` → `"`, `\\` → `\`; other escapes
//!    are C-like or drop the backslash, so none may be left over), while
//!    whitespace, newlines, `{`, `}` and `#` are literal. [`quote`] doubles
//!    every backslash and escapes every `"`, so any string (UTF-8, control
//!    characters, newlines) becomes exactly one word with that value.
//! 2. **Substitution**: `importas V …` (also `define`, `withstdinas -E`, …)
//!    rewrites references to `V` in *all the words after it*: `${V}`, and
//!    `$V` when the name ends the word or is followed by `$`, `{`, `}` or
//!    `\` (so `$V-x`, `$Vx`, `$V/x` are not references). A reference
//!    preceded by `2k+1` backslashes becomes the literal reference
//!    preceded by `k` backslashes; `2k` backslashes give `k` backslashes
//!    and the value. Backslashes anywhere else, and references to other
//!    names, are left alone. [`protect`] applies exactly this rule, so a
//!    user's `${V}` reaches the program verbatim.
//!
//! With `execlineb -P` there is no positional substitution (`$1`, `$@`).

/// A word for `execlineb`: double-quoted, `\` and `"` backslash-escaped.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if c == '\\' || c == '"' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// Whether the text after a `$` at `rest` is a reference to `name`:
/// `{name}…`, or `name` followed by the end or one of `$ { } \`.
fn is_reference(rest: &str, name: &str) -> bool {
    if let Some(braced) = rest.strip_prefix('{') {
        return braced
            .strip_prefix(name)
            .is_some_and(|r| r.starts_with('}'));
    }
    match rest.strip_prefix(name) {
        Some(after) => after.is_empty() || after.starts_with(['$', '{', '}', '\\']),
        None => false,
    }
}

/// Escapes every reference to one of `names` in `s` so that substitution
/// of those names leaves `s` unchanged (see the module docs).
pub fn protect(s: &str, names: &[&str]) -> String {
    if names.is_empty() || !s.contains('$') {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len() + 8);
    let mut backslashes = 0usize;
    for (i, c) in s.char_indices() {
        match c {
            '\\' => backslashes += 1,
            '$' => {
                let rest = &s[i + 1..];
                let n = if names.iter().any(|n| is_reference(rest, n)) {
                    2 * backslashes + 1
                } else {
                    backslashes
                };
                out.extend(std::iter::repeat_n('\\', n));
                out.push('$');
                backslashes = 0;
            }
            c => {
                out.extend(std::iter::repeat_n('\\', backslashes));
                out.push(c);
                backslashes = 0;
            }
        }
    }
    out.extend(std::iter::repeat_n('\\', backslashes));
    out
}

/// An execline script under construction: one command (with its words) per
/// line, every word of a value protected against the substitutions
/// declared so far and quoted.
#[derive(Debug, Default, Clone)]
pub struct Script {
    lines: Vec<String>,
    /// Names substituted by an earlier `importas`.
    substituted: Vec<String>,
}

/// One word of a command line.
pub enum Word<'a> {
    /// A value (program path, argument, …): protected and quoted.
    Value(&'a str),
    /// Syntax written by the generator itself (`{`, `}`, option flags,
    /// a `${var}` meant to be substituted): inserted as is.
    Raw(&'a str),
}

impl Script {
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends one line of words.
    pub fn line(&mut self, words: &[Word<'_>]) -> &mut Self {
        let names: Vec<&str> = self.substituted.iter().map(String::as_str).collect();
        let rendered: Vec<String> = words
            .iter()
            .map(|w| match w {
                Word::Value(v) => quote(&protect(v, &names)),
                Word::Raw(r) => (*r).to_string(),
            })
            .collect();
        self.lines.push(rendered.join(" "));
        self
    }

    /// Records that the rest of the script is subject to substitution of
    /// `name` (call right after the line that declares it).
    pub fn substitutes(&mut self, name: &str) -> &mut Self {
        self.substituted.push(name.to_string());
        self
    }

    /// The lines, each ending in a newline.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for l in &self.lines {
            out.push_str(l);
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quote_escapes_only_backslash_and_double_quote() {
        assert_eq!(quote("plain"), "\"plain\"");
        assert_eq!(quote(""), "\"\"");
        assert_eq!(quote("a\"b\\c"), "\"a\\\"b\\\\c\"");
        assert_eq!(quote("{ } # $x\n"), "\"{ } # $x\n\"");
    }

    #[test]
    fn references_follow_execline_rules() {
        for (rest, yes) in [
            ("{P}", true),
            ("{P}x", true),
            ("P", true),
            ("P$", true),
            ("P{", true),
            ("P}", true),
            ("P\\", true),
            ("Px", false),
            ("P-x", false),
            ("P/x", false),
            ("{Px}", false),
            ("{P", false),
            ("Q", false),
        ] {
            assert_eq!(is_reference(rest, "P"), yes, "${rest}");
        }
    }

    #[test]
    fn protect_escapes_references_only() {
        let p = |s: &str| protect(s, &["P"]);
        assert_eq!(p("no dollar"), "no dollar");
        assert_eq!(p("${P}"), "\\${P}");
        assert_eq!(p("$P"), "\\$P");
        assert_eq!(p("\\${P}"), "\\\\\\${P}");
        assert_eq!(p("\\\\$P"), "\\\\\\\\\\$P");
        assert_eq!(p("$P-x \\$HOME \\ ${Q}"), "$P-x \\$HOME \\ ${Q}");
        assert_eq!(p("$P$P"), "\\$P\\$P");
        assert_eq!(p("trailing\\"), "trailing\\");
        assert_eq!(protect("${P}", &[]), "${P}");
    }
}
