//! The text formats of a docker container package.
//!
//! * `<name>-docker-createparams`, `<name>-docker-cmd`, `<name>-storepaths`:
//!   one argument per line, every line (the last included) ended by `\n`.
//!   The activator passes each line as one argv word to `docker create` —
//!   no shell in between, so quotes, `$()`, backticks, `;`, `%`, `\` and
//!   non-ASCII reach docker verbatim. A value with a line break (or NUL)
//!   cannot be written this way; [`line_problem`] says so and the generator
//!   turns it into an error naming the attribute.
//! * `<name>-docker-settings`: `key=<value>` lines, values shell-escaped
//!   ([`crate::quote::shell_escape`]), so the file can still be sourced like
//!   the original's.

use crate::error::{Error, Result};
use crate::quote::shell_escape;

/// Why `s` cannot be one line of an argument file, if it cannot.
pub fn line_problem(s: &str) -> Option<&'static str> {
    if s.contains(['\n', '\r']) {
        Some("contains a line break, which a one-argument-per-line file cannot hold")
    } else if s.contains('\0') {
        Some("contains a NUL character, which cannot be a command-line argument")
    } else {
        None
    }
}

pub fn has_line_break(s: &str) -> bool {
    line_problem(s).is_some()
}

/// Checks one argument destined for a line file; `attr` names it in the
/// error.
pub fn check_line(attr: &str, s: &str) -> Result<()> {
    match line_problem(s) {
        Some(why) => Err(Error::invalid(attr, format!("{s:?} {why}"))),
        None => Ok(()),
    }
}

/// One argument per line.
pub fn lines_text<S: AsRef<str>>(words: &[S]) -> String {
    let mut out = String::new();
    for w in words {
        out.push_str(w.as_ref());
        out.push('\n');
    }
    out
}

/// Reads a file written by [`lines_text`] back into its words.
pub fn parse_lines(text: &str) -> Vec<String> {
    text.split_terminator('\n').map(String::from).collect()
}

/// `key=<escaped value>` lines, in the given order.
pub fn settings_text(pairs: &[(&str, &str)]) -> String {
    let mut out = String::new();
    for (k, v) in pairs {
        out.push_str(k);
        out.push('=');
        out.push_str(&shell_escape(v));
        out.push('\n');
    }
    out
}

/// A `docker create` option for a parameter name: `--<name>`, or `-<n>`
/// for a one-letter name (reference §3.9.1).
pub fn option_flag(name: &str) -> String {
    if name.chars().count() == 1 {
        format!("-{name}")
    } else {
        format!("--{name}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_round_trip_hostile_words() {
        let words = [
            "",
            "it's",
            "$(id)",
            "`id`",
            "a;b",
            "100%",
            "back\\slash",
            "grüße",
            " spaced ",
        ];
        let text = lines_text(&words);
        assert_eq!(parse_lines(&text), words);
        assert_eq!(lines_text::<&str>(&[]), "");
        assert_eq!(parse_lines(""), Vec::<String>::new());
    }

    #[test]
    fn line_problems() {
        assert!(line_problem("a\nb").is_some());
        assert!(line_problem("a\rb").is_some());
        assert!(line_problem("a\0b").is_some());
        assert_eq!(line_problem("a b\t'\"$`"), None);
        assert_eq!(
            check_line("cmd[1]", "x\ny").unwrap_err().to_string(),
            "attribute 'cmd[1]': \"x\\ny\" contains a line break, which a \
             one-argument-per-line file cannot hold"
        );
    }

    #[test]
    fn flags_and_settings() {
        assert_eq!(option_flag("p"), "-p");
        assert_eq!(option_flag("memory"), "--memory");
        assert_eq!(
            settings_text(&[("dockerImage", "/nix/store/x-i.tar"), ("stateDir", "/a b")]),
            "dockerImage=/nix/store/x-i.tar\nstateDir='/a b'\n"
        );
    }
}
