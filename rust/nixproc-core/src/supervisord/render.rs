//! supervisord's ini format: how a value survives the trip through
//! supervisord 4.2's parser, and the text of the generated files.
//!
//! # How supervisord 4.2 reads a value (checked against `options.py`,
//! `datatypes.py` and `process.py` of Debian's supervisor 4.2.5)
//!
//! 1. **configparser** (`UnhosedConfigParser`, a `RawConfigParser` with
//!    `inline_comment_prefixes = (';', '#')`): the file is read line by
//!    line (Python universal newlines, so `\n`, `\r` and `\r\n` all end a
//!    line); a `;` or `#` that is preceded by a whitespace character
//!    (Python's `str.isspace`) starts a comment that runs to the end of the
//!    line; the value is then stripped of leading and trailing whitespace.
//!    A value can therefore never hold a line break, never hold whitespace
//!    followed by `;`/`#`, and never start or end with whitespace.
//! 2. **`%(here)s`**: when the config has an `[include]` section (ours
//!    always does) every value of every section that contains the text
//!    `%(here)s` gets it replaced *textually* by the file's directory,
//!    before the next step. Our `%` → `%%` escaping turns an original
//!    `%(here)s` into `%%(here)s`, which still contains it, so such text has
//!    to be broken up (possible in `command` only) or rejected.
//! 3. **`%` expansion**: every value (`command`, `environment`, log files,
//!    `directory`, `user`, … — all go through `saneget`/`expand`) is used
//!    as a Python `%`-format string over a dict (`program_name`, `here`,
//!    `ENV_<NAME>` for supervisord's own environment, …). `%%` is a literal
//!    `%`; any other `%` is an expansion or an error. So every value has
//!    `%` doubled ([`percent`]); the one expansion we write on purpose is
//!    `%(ENV_PATH)s` after the `path` entries. `stdout_logfile` and
//!    `stderr_logfile` are expanded *twice* (`saneget`, then `expand` again
//!    in `_processes_from_section`), so their `%` is quadrupled; a test
//!    runs supervisor's parser on such a path.
//! 4. **`command`** is split with `shlex.split` (POSIX mode, no comments):
//!    whitespace is ` \t\r\n`; `'…'` is literal; `\` escapes outside
//!    quotes; adjacent quoted pieces join into one word. [`command_word`]
//!    quotes like [`crate::quote::shell_escape`] (bare safe words, else
//!    `'…'` with `'` as `'\''`) and additionally closes and reopens the
//!    quotes (`''`) between a whitespace character and a following `;`/`#`
//!    (step 1) and between `%%` and a following `(` (step 2). Every word
//!    without `\n`, `\r` or NUL is representable.
//! 5. **`environment`** is split with `shlex.shlex` in *non-POSIX* mode and
//!    each value then has *all* leading and trailing `'`/`"` stripped
//!    (`.strip('\'"')`). Non-POSIX shlex has no escapes at all: `"a\"b"`
//!    ends at the second `"` and `"a\\b"` gives two backslashes. So a value
//!    is written `KEY="…"` (or `KEY='…'` when it contains `"`), and a value
//!    is representable only if it does not contain both quote characters,
//!    does not start or end with one, and passes step 1 and 2
//!    ([`env_value_problem`]). (The brief's "backslash-escape `\` and `"`"
//!    would not round-trip: supervisord does not unescape.) Values that
//!    fail are an error in `createSupervisordProgram`; `createManagedProcess`
//!    moves the environment onto the foreground proxy's command line
//!    instead.
//!
//! Non-ASCII text is written as UTF-8; Python decodes the file with the
//! locale's encoding, which is UTF-8 on any current system (and under the
//! C locale since Python 3.7's UTF-8 coercion).

use std::collections::BTreeMap;

/// Python's `str.isspace` for the characters that matter here: Unicode
/// White_Space plus the information separators U+001C–U+001F (bidi class
/// B/S), which Python also counts as whitespace.
pub fn python_isspace(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// `%` → `%%`: supervisord expands every value as a Python `%`-format.
pub fn percent(s: &str) -> String {
    s.replace('%', "%%")
}

/// A line break or NUL: no ini value can hold one.
pub fn has_line_break(s: &str) -> bool {
    s.contains(['\n', '\r', '\0'])
}

/// Where `s` (as written into a value) has a whitespace character followed
/// by `;` or `#`, which configparser reads as the start of a comment.
fn has_inline_comment(s: &str) -> bool {
    let mut prev_space = false;
    for c in s.chars() {
        if prev_space && (c == ';' || c == '#') {
            return true;
        }
        prev_space = python_isspace(c);
    }
    false
}

/// Why `s` cannot be written as a plain (unquoted) supervisord value, or
/// `None` when it can. Used for every key except `command` and
/// `environment`.
pub fn plain_problem(s: &str) -> Option<&'static str> {
    if has_line_break(s) {
        Some("contains a line break or NUL, which an ini value cannot hold")
    } else if s.starts_with(python_isspace) || s.ends_with(python_isspace) {
        Some("starts or ends with whitespace, which supervisord strips")
    } else if has_inline_comment(s) {
        Some("has whitespace followed by ';' or '#', which supervisord reads as a comment")
    } else if s.contains("%(here)s") {
        Some("contains %(here)s, which supervisord replaces before anything else")
    } else {
        None
    }
}

/// Why `v` cannot be an `environment=` value (see the module docs, step 5),
/// or `None` when it can.
pub fn env_value_problem(v: &str) -> Option<&'static str> {
    if has_line_break(v) {
        Some("contains a line break or NUL, which an ini value cannot hold")
    } else if v.contains('"') && v.contains('\'') {
        Some("contains both ' and \", and supervisord's environment parser has no escapes")
    } else if v.starts_with(['\'', '"']) || v.ends_with(['\'', '"']) {
        Some("starts or ends with a quote, which supervisord strips from environment values")
    } else if has_inline_comment(v) {
        Some("has whitespace followed by ';' or '#', which supervisord reads as a comment")
    } else if v.contains("%(here)s") {
        Some("contains %(here)s, which supervisord replaces before anything else")
    } else {
        None
    }
}

/// `"…"`, or `'…'` when the value holds a `"`; `%` doubled. `raw_suffix`
/// is appended inside the quotes unescaped (for `%(ENV_PATH)s`). The value
/// must have passed [`env_value_problem`].
pub fn env_value(v: &str, raw_suffix: &str) -> String {
    let q = if v.contains('"') { '\'' } else { '"' };
    format!("{q}{}{raw_suffix}{q}", percent(v))
}

/// One word of `command=`, for `shlex.split` after `%` expansion (module
/// docs, step 4). The word must not contain `\n`, `\r` or NUL.
pub fn command_word(w: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || ",._+:@%/-".contains(c);
    if !w.is_empty() && w.chars().all(safe) {
        // Bare: no whitespace, quote, `;`, `#` or `(` can occur.
        return percent(w);
    }
    let mut out = String::with_capacity(w.len() + 2);
    out.push('\'');
    let mut prev: Option<char> = None;
    for c in w.chars() {
        let breaks_comment = (c == ';' || c == '#') && prev.is_some_and(python_isspace);
        let breaks_here = c == '(' && prev == Some('%');
        if breaks_comment || breaks_here {
            out.push_str("''");
        }
        match c {
            '\'' => out.push_str("'\\''"),
            '%' => out.push_str("%%"),
            c => out.push(c),
        }
        prev = Some(c);
    }
    out.push('\'');
    out
}

/// A whole `command=` value from argv words.
pub fn command_line<S: AsRef<str>>(words: &[S]) -> String {
    words
        .iter()
        .map(|w| command_word(w.as_ref()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// One `environment=` entry's value: literal text plus an unescaped
/// suffix, or a whole literal value.
pub struct EnvValue {
    pub literal: String,
    pub raw_suffix: &'static str,
}

/// The text of `conf.d/<name>.conf` (reference §3.3.3): `command`,
/// `priority`, `environment` (keys sorted), then the other keys sorted.
/// Every value must already be in its final, escaped form.
pub fn program_text(
    name: &str,
    command: &str,
    priority: i64,
    environment: &BTreeMap<String, EnvValue>,
    keys: &BTreeMap<String, String>,
) -> String {
    let mut t = format!("[program:{name}]\ncommand={command}\npriority={priority}\n");
    if !environment.is_empty() {
        let entries: Vec<String> = environment
            .iter()
            .map(|(k, v)| format!("{k}={}", env_value(&v.literal, v.raw_suffix)))
            .collect();
        t.push_str(&format!("environment={}\n", entries.join(",")));
    }
    for (k, v) in keys {
        t.push_str(&format!("{k}={v}\n"));
    }
    t
}

/// The base `supervisord.conf` at the profile root (reference §1.4, with
/// nixproc's settings). Arguments are already escaped.
pub fn base_config_text(log_dir: &str, runtime_dir: &str) -> String {
    format!(
        "; Generated by nixproc. Start with: supervisord -c <profile>/supervisord.conf\n\
         \n\
         [supervisord]\n\
         logfile={log_dir}/supervisord.log\n\
         pidfile={runtime_dir}/supervisord.pid\n\
         childlogdir={log_dir}\n\
         \n\
         ; A unix socket under runtimeDir instead of nix-processmgmt's\n\
         ; 127.0.0.1:9001, so that deployments of two users (each with its own\n\
         ; runtimeDir) never collide, and only the owner can control it.\n\
         [unix_http_server]\n\
         file={runtime_dir}/supervisord.sock\n\
         chmod=0700\n\
         \n\
         [rpcinterface:supervisor]\n\
         supervisor.rpcinterface_factory=supervisor.rpcinterface:make_main_rpcinterface\n\
         \n\
         [supervisorctl]\n\
         serverurl=unix://{runtime_dir}/supervisord.sock\n\
         \n\
         ; Relative to this file: the profile's conf.d.\n\
         [include]\n\
         files=conf.d/*.conf\n"
    )
}
