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

#[cfg(test)]
mod tests {
    use super::*;

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
