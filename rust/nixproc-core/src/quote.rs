//! Escaping, one function per target format. Every value that reaches a
//! generated file goes through one of these; a hostile-string test feeds
//! quotes, `$()`, backticks, newlines and `%` through each of them.

/// Quotes a word for POSIX `sh` so it reaches the command verbatim.
/// Like nixpkgs' `escapeShellArg`: words made only of safe characters stay
/// bare (readable scripts), everything else is single-quoted with `'`
/// written as `'\''`. The empty string becomes `''`.
pub fn shell_escape(s: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || ",._+:@%/-".contains(c);
    if !s.is_empty() && s.chars().all(safe) {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        if c == '\'' {
            out.push_str("'\\''");
        } else {
            out.push(c);
        }
    }
    out.push('\'');
    out
}

/// Quotes each word and joins them with spaces.
pub fn shell_join<S: AsRef<str>>(words: &[S]) -> String {
    words
        .iter()
        .map(|w| shell_escape(w.as_ref()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Escapes a string onto one line: `\\` → `\\\\`, newline → `\\n`, CR → `\\r`,
/// tab → `\\t`, other ASCII control characters → `\\xHH`; everything else
/// (UTF-8 included) stays as it is. This is the `--escaped` protocol of
/// `nixproc-builder foreground-proxy`: formats that cannot hold a newline
/// in a value (supervisord's ini) pass arguments this way and the helper
/// decodes them with [`c_unescape`].
pub fn c_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_ascii_control() => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// Reverses [`c_escape`]; any other backslash sequence is an error, so a
/// value that was not escaped is not silently mangled.
pub fn c_unescape(s: &str) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('\\') => out.push('\\'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('t') => out.push('\t'),
            Some('x') => {
                let hex: String = chars.by_ref().take(2).collect();
                let byte = u8::from_str_radix(&hex, 16)
                    .ok()
                    .filter(|b| b.is_ascii() && hex.len() == 2)
                    .ok_or_else(|| format!("bad escape \\x{hex} in {s:?}"))?;
                out.push(char::from(byte));
            }
            other => {
                return Err(format!(
                    "bad escape \\{} in {s:?}",
                    other.map(String::from).unwrap_or_default()
                ))
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn c_escape_roundtrips_and_stays_on_one_line() {
        for s in [
            "",
            "plain",
            "a\nb\r\tc",
            "back\\slash \\n",
            "\x01\x7f",
            "ünï'\"$(x)`;%",
        ] {
            let e = c_escape(s);
            assert!(!e.contains(['\n', '\r']), "{e:?}");
            assert_eq!(c_unescape(&e).unwrap(), s);
        }
        assert!(c_unescape("\\q").is_err());
        assert!(c_unescape("\\x4").is_err());
        assert!(c_unescape("trailing\\").is_err());
    }

    #[test]
    fn safe_words_stay_bare() {
        assert_eq!(shell_escape("/nix/store/x-a/bin/a"), "/nix/store/x-a/bin/a");
        assert_eq!(shell_escape("--port"), "--port");
        assert_eq!(shell_escape("a=b"), "'a=b'");
    }

    #[test]
    fn everything_else_is_single_quoted() {
        assert_eq!(shell_escape(""), "''");
        assert_eq!(shell_escape("a b"), "'a b'");
        assert_eq!(shell_escape("it's"), "'it'\\''s'");
        assert_eq!(shell_escape("$(id)`x`;\n"), "'$(id)`x`;\n'");
    }

    #[test]
    fn sh_reads_back_every_hostile_string() {
        let hostile = [
            "plain",
            "with space",
            "quote ' \" mix",
            "$(echo pwned) `echo pwned` ${HOME}",
            "semi; rm -rf / ; &&",
            "new\nline\ttab",
            "100% * ? [a] ~ # !",
            "\\backslash\\",
            "",
        ];
        for h in hostile {
            let out = std::process::Command::new("sh")
                .arg("-c")
                .arg(format!("printf %s {}", shell_escape(h)))
                .output()
                .expect("sh runs");
            assert_eq!(String::from_utf8(out.stdout).unwrap(), h);
        }
    }
}
